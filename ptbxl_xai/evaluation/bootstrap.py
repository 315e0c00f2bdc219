"""Bootstrap resampling of test records: the PTB-XL benchmark's scheme, paired draws and clusters.

A replicate is a count vector w [n] (how often each record is drawn); metrics are computed as
weighted metrics over the original records (see ptbxl_xai.evaluation.metrics), so B replicates are
a [B, n] matrix. Draws come from `rng.integers(0, n, size=(b, n))`, one row per replicate; numpy
gives the same stream whatever the chunk size, so a replicate sequence does not depend on memory.

Benchmark scheme (Strodthoff et al. 2021, `get_appropriate_bootstrap_samples`): the label set is
fixed by the point estimate, and a replicate in which one of those labels lacks a positive (or a
negative, so that its AUC is defined) is drawn again. Every replicate then averages over the same
labels. With many rare labels on few records almost no replicate qualifies; after `max_draws`
draws the scheme gives up and the caller falls back, saying so (`BootstrapDraws.scheme`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

CHUNK_ELEMENTS = 4_000_000  # about 32 MB per float64 work array


@dataclass
class BootstrapDraws:
    """Accepted count matrices and how they were obtained."""

    weights: list[np.ndarray] = field(default_factory=list)  # chunks [b, n]
    drawn: int = 0  # replicates drawn in all, accepted or not
    scheme: str = "benchmark"  # benchmark | unconstrained (fallback, see note)
    note: str = ""

    @property
    def accepted(self) -> int:
        return int(sum(len(w) for w in self.weights))


def _counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    idx = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def chunk_size(n: int, width: int = 1) -> int:
    """Replicates per chunk so that a [b, n, width] work array stays about CHUNK_ELEMENTS."""
    return max(1, CHUNK_ELEMENTS // max(1, n * width))


def draw(
    y: np.ndarray | None,
    n: int,
    n_boot: int,
    rng: np.random.Generator,
    required: np.ndarray | None = None,
    chunk: int | None = None,
    max_draws: int | None = None,
) -> BootstrapDraws:
    """n_boot replicates of n records; with `required` label columns of y [n, C], the benchmark scheme.

    A replicate is kept only if each required label has at least one positive and one negative
    record in it. If fewer than n_boot are kept within `max_draws` draws (default 1000 x n_boot),
    the draws restart from the same seed without the constraint and `scheme` says "unconstrained".
    """
    chunk = chunk or chunk_size(n)
    out = BootstrapDraws()
    if n_boot <= 0:
        return out
    state = rng.bit_generator.state
    req = np.flatnonzero(required) if required is not None and np.asarray(required).dtype == bool else required
    if y is not None and req is not None and len(req):
        yr = np.asarray(y, dtype=np.float64)[:, req]
        max_draws = max_draws or 1000 * n_boot
        while out.accepted < n_boot and out.drawn < max_draws:
            w = _counts(rng, n, min(chunk, max_draws - out.drawn))
            pos = w @ yr
            ok = np.flatnonzero(((pos > 0) & (pos < n)).all(axis=1))  # pos < n: a drawn record is negative
            need = n_boot - out.accepted
            if len(ok) >= need:  # count the draws up to the last replicate kept, as a one-by-one loop would
                out.drawn += int(ok[need - 1]) + 1
                out.weights.append(w[ok[:need]])
                break
            out.drawn += len(w)
            out.weights.append(w[ok])
            if out.drawn >= 5 * chunk and out.accepted / out.drawn * max_draws < n_boot:
                break  # hopeless at this acceptance rate: stop early rather than spin
        if out.accepted >= n_boot:
            rate = n_boot / out.drawn if out.drawn else 1.0
            out.note = (
                f"benchmark bootstrap: {n_boot} replicates, each with a positive and a negative for every one "
                f"of the {len(req)} labels (replicates lacking one redrawn; {out.drawn} drawn)"
            )
            if rate < 1:
                out.note += f", acceptance {rate:.3g}"
            return out
        accepted_rate = out.accepted / max(out.drawn, 1)
        rng.bit_generator.state = state
        out = BootstrapDraws(
            scheme="unconstrained",
            note=(
                f"benchmark bootstrap infeasible: only {accepted_rate:.2g} of replicates hold a positive for all "
                f"{len(req)} labels; unconstrained replicates instead, each averaging the labels defined in it"
            ),
        )
    else:
        out.scheme = "unconstrained"
        out.note = f"bootstrap: {n_boot} replicates of the {n} records"
    for a in range(0, n_boot, chunk):
        out.weights.append(_counts(rng, n, min(chunk, n_boot - a)))
    out.drawn = n_boot
    return out


def percentile_ci(values: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite values; (nan, nan) if none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan")
    lo, hi = np.percentile(v, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(lo), float(hi)


def paired_p_value(deltas: np.ndarray, observed: float) -> float:
    """Two-sided bootstrap p-value of H0: no difference, by centring the replicate differences.

    p = (1 + #{|d* - d| >= |d|}) / (1 + B): the share of centred replicates at least as far from 0
    as the observed difference. Two identical runs (every d* = d = 0) give p = 1.
    """
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not d.size or not np.isfinite(observed):
        return float("nan")
    extreme = np.abs(d - observed) >= abs(observed) - 1e-15
    return float((1 + extreme.sum()) / (1 + d.size))


def cluster_weights(clusters, n_boot: int, rng: np.random.Generator):
    """Yield [b, n_items] weights that resample whole clusters (e.g. records) with replacement.

    Each item carries the count of its cluster, so the labels (or pairs) of one record are drawn
    together: they share one record's signal and attention, and are not independent.
    """
    codes, _ = _factorize(clusters)
    k = int(codes.max()) + 1 if codes.size else 0
    chunk = chunk_size(max(k, 1) + codes.size)
    for a in range(0, n_boot, chunk):
        b = min(chunk, n_boot - a)
        yield _counts(rng, k, b)[:, codes]


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    uniq, codes = np.unique(np.asarray(values), return_inverse=True)
    return codes.reshape(-1), uniq


def weighted_median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Median of x [m] under each weight row of w [B, m] (lower median of the expanded sample)."""
    order = np.argsort(x, kind="mergesort")
    xs, ws = x[order], w[:, order]
    cum = np.cumsum(ws, axis=1)
    total = cum[:, -1:]
    # the expanded sample's median: mean of the values at ranks ceil(t/2) and floor(t/2)+1
    lo = np.argmax(cum >= np.ceil(total / 2), axis=1)
    hi = np.argmax(cum >= np.floor(total / 2) + 1, axis=1)
    out = 0.5 * (xs[lo] + xs[hi])
    out[total[:, 0] == 0] = np.nan
    return out


def cluster_bootstrap_ci(values, clusters, stat: str = "median", n_boot: int = 2000, seed: int = 0, ci: float = 0.95):
    """Percentile CI of the median (or mean) of `values`, resampling `clusters` (e.g. ecg_id) whole.

    NaN values are dropped first. Returns (lo, hi); (nan, nan) when nothing is left or n_boot is 0.
    """
    v, c = np.asarray(values, dtype=np.float64), np.asarray(clusters)
    ok = np.isfinite(v)
    v, c = v[ok], c[ok]
    if not v.size or n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    reps = []
    for w in cluster_weights(c, n_boot, rng):
        if stat == "median":
            reps.append(weighted_median(v, w))
        elif stat == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                reps.append((w @ v) / w.sum(axis=1))
        else:
            raise ValueError(f"stat must be median or mean, not {stat!r}")
    return percentile_ci(np.concatenate(reps), ci)


def mean_ci(values, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of the finite values and its percentile bootstrap interval: (mean, low, high, n)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    if n == 1 or n_boot <= 0:
        return float(v.mean()), float("nan"), float("nan"), n
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, n, size=(n_boot, n))].mean(1)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(v.mean()), float(lo), float(hi), n


def median_ci(x: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0, clusters=None):
    """Percentile bootstrap interval of the median (NaNs dropped); (nan, nan) if empty.

    With `clusters` (e.g. the ecg_id of each record-label value) whole records are resampled:
    the labels of one record share its signal and attention and are not independent draws
    (`cluster_bootstrap_ci`). Without, scipy.stats.bootstrap (as fast
    as the former hand-written matrix version, same draws for the same seed).
    """
    x = np.asarray(x, dtype=np.float64)
    if clusters is not None:
        return cluster_bootstrap_ci(x, clusters, "median", n_boot=n_boot, seed=seed, ci=level)
    x = x[np.isfinite(x)]
    if x.size == 0 or n_boot <= 0:  # n_boot=0: no interval wanted
        return float("nan"), float("nan")
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])  # every resample has this median
    res = stats.bootstrap(
        (x,), np.median, n_resamples=n_boot, confidence_level=level, method="percentile",
        vectorized=True, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
