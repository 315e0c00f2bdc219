"""Multi-label evaluation with bootstrap confidence intervals.

Every metric is computed from per-record weights w [B, n]: the point estimate
uses w = 1, a bootstrap replicate uses w = how often each record was drawn.
A replicate is then a weighted metric over the original records, which equals
the metric on the resampled set exactly and lets all replicates be computed
with matrix products instead of re-running scikit-learn B times.

Conventions (shared with ecgxai.evaluation.thresholds):
- a label is predicted iff prob >= threshold;
- precision/recall/F1 with a zero denominator count as 0 (scikit-learn's
  zero_division=0), and a note says so;
- ROC-AUC is undefined for a label without positives or without negatives in
  the test set: it is NaN per label (with a note) and left out of the macro
  mean, and n_labels_used says how many labels the mean covers. Bootstrap
  replicates follow the same rule, replicate by replicate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

FMAX_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)  # CAFA-style global threshold grid
_CHUNK_ELEMENTS = 4_000_000  # bootstrap chunking: about 32 MB per float64 work array


def _check(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"y_true and probs must both be [n, C]; got {y.shape} and {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or inf")
    return y > 0, p


def _div(a, b):
    """a / b with 0 where b == 0 (zero_division=0)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b != 0)


def _auc_weighted(y: np.ndarray, s: np.ndarray, w: np.ndarray, rec: np.ndarray | None = None) -> np.ndarray:
    """ROC-AUC of scores s [m] against y [m] for each weight row of w [B, n] -> [B].

    Element i carries weight w[:, rec[i]] (rec defaults to i). Mann-Whitney form
    with ties counted 1/2, as roc_auc_score computes it, on groups of tied
    scores: AUC = sum_g pos_g * (neg_below_g + neg_g / 2) / (P * N).
    NaN where the positive or the negative weight is zero.
    """
    order = np.argsort(s, kind="mergesort")
    ss, ys = s[order], y[order].astype(np.float64)
    ws = w[:, order if rec is None else rec[order]]
    pos = ws * ys
    neg = ws - pos
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    if starts.size < ss.size:  # tied scores: sum weights within each tie group
        pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = np.einsum("ij,ij->i", pos, below) + 0.5 * np.einsum("ij,ij->i", pos, neg)  # no temporaries
    wp, wn = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = num / (wp * wn)
    auc[(wp == 0) | (wn == 0)] = np.nan
    return auc


def _label_aucs(y, p, w) -> np.ndarray:
    """[B, C] per-label AUCs (NaN where undefined in that replicate)."""
    return np.stack([_auc_weighted(y[:, c], p[:, c], w) for c in range(y.shape[1])], axis=1)


def _micro_auc(y, p, w) -> np.ndarray:
    # all labels pooled (record-major ravel); each element carries its record's weight
    return _auc_weighted(y.ravel(), p.ravel(), w, rec=np.repeat(np.arange(len(y)), y.shape[1]))


def roc_auc_per_label(y_true, probs) -> np.ndarray:
    """Per-label ROC-AUC [C]; NaN for a label lacking positives or negatives."""
    y, p = _check(y_true, probs)
    return _label_aucs(y, p, np.ones((1, len(y))))[0]


def macro_auc(y_true, probs) -> tuple[float, int]:
    """(mean AUC over the labels having both classes, number of such labels); (nan, 0) if none."""
    aucs = roc_auc_per_label(y_true, probs)
    ok = np.isfinite(aucs)
    return (float(aucs[ok].mean()) if ok.any() else float("nan")), int(ok.sum())


def _threshold_metrics(y, pred, w) -> dict[str, np.ndarray]:
    """Label-based and example-based metrics of binary predictions, one value per weight row."""
    yf, pf = y.astype(np.float64), pred.astype(np.float64)
    tp, fp, fn = w @ (yf * pf), w @ ((1 - yf) * pf), w @ (yf * (1 - pf))  # [B, C]
    support = tp + fn
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    TP, FP, FN = tp.sum(1), fp.sum(1), fn.sum(1)
    W, C = w.sum(1), y.shape[1]
    return {
        "macro_f1": f1.mean(1),
        "micro_f1": _div(2 * TP, 2 * TP + FP + FN),
        "weighted_f1": _div((f1 * support).sum(1), support.sum(1)),
        "macro_precision": _div(tp, tp + fp).mean(1),
        "micro_precision": _div(TP, TP + FP),
        "macro_recall": _div(tp, support).mean(1),
        "micro_recall": _div(TP, TP + FN),
        "hamming_loss": (w @ (y != pred).sum(1)) / (W * C),
        "subset_accuracy": (w @ (y == pred).all(1)) / W,
    }


def _fmax(y, p, w, grid=FMAX_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Sample-centric Fmax (CAFA; Strodthoff et al. 2021 for PTB-XL) per weight row -> (Fmax, argmax threshold).

    At each global threshold t: precision = mean over records with >= 1
    predicted label of that record's precision; recall = mean over records
    (with >= 1 true label, where recall is defined) of that record's recall;
    Fmax = max_t 2PR / (P + R).
    """
    tp = np.empty((len(y), grid.size))
    npred = np.empty_like(tp)
    for j, t in enumerate(grid):
        pr = p >= t
        tp[:, j], npred[:, j] = (pr & y).sum(1), pr.sum(1)
    ntrue = y.sum(1).astype(np.float64)
    has_pred, has_true = npred > 0, ntrue > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        P = (w @ _div(tp, npred)) / (w @ has_pred)  # [B, G]; NaN where no record predicts anything
        R = (w @ _div(tp, ntrue[:, None])) / (w @ has_true)[:, None]
        F = np.where(P + R > 0, 2 * P * R / (P + R), 0.0)
    F[~np.isfinite(P) | ~np.isfinite(R)] = np.nan
    best = np.full(len(w), np.nan)
    thr = np.full(len(w), np.nan)
    ok = np.isfinite(F).any(1)
    if ok.any():
        j = np.nanargmax(F[ok], axis=1)
        best[ok], thr[ok] = F[ok][np.arange(ok.sum()), j], grid[j]
    return best, thr


def _all_metrics(y, p, thresholds, w) -> dict[str, np.ndarray]:
    """Every overall metric for each weight row of w [B, n] -> {name: [B]}."""
    aucs = _label_aucs(y, p, w)
    valid = np.isfinite(aucs)
    cnt = valid.sum(1)
    # macro mean over the labels defined in that replicate
    out = {"macro_auc": np.where(cnt > 0, np.where(valid, aucs, 0).sum(1) / np.maximum(cnt, 1), np.nan)}
    out["micro_auc"] = _micro_auc(y, p, w)
    for tag, thr in (("0.5", 0.5), ("tuned", thresholds)):
        for name, v in _threshold_metrics(y, p >= thr, w).items():
            out[f"{name}@{tag}"] = v
    out["fmax"] = _fmax(y, p, w)[0]
    return out


def _bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator, chunk: int):
    """Yield count matrices [b, n] (how often each record is drawn), chunked to bound memory."""
    for a in range(0, n_boot, chunk):
        b = min(chunk, n_boot - a)
        idx = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def _names(idx, label_names) -> str:
    shown = [str(label_names[i]) for i in idx[:10]]
    return ", ".join(shown) + (", ..." if len(idx) > 10 else "")


def evaluate(
    y_true, probs, thresholds, label_names: Sequence[str], n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Overall metrics with percentile bootstrap CIs, and per-label metrics.

    overall: metric, value, ci_low, ci_high, n_labels_used, note. Metric names:
    macro_auc, micro_auc, {macro,micro,weighted}_f1@{0.5,tuned},
    {macro,micro}_{precision,recall}@{0.5,tuned}, hamming_loss@..,
    subset_accuracy@.., fmax. n_boot=0 skips the bootstrap (CIs NaN).
    per_label: label, support, prevalence, auc, f1, precision, recall (at the
    tuned threshold), threshold, note.
    """
    y, p = _check(y_true, probs)
    n, C = y.shape
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (C,)).copy()
    label_names = [str(s) for s in label_names]
    if len(label_names) != C:
        raise ValueError(f"{len(label_names)} label names for {C} labels")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")

    ones = np.ones((1, n))
    point = {k: float(v[0]) for k, v in _all_metrics(y, p, thr, ones).items()}

    boot = {k: np.empty(0) for k in point}
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        chunk = max(1, _CHUNK_ELEMENTS // (n * C))
        parts = [_all_metrics(y, p, thr, w) for w in _bootstrap_weights(n, n_boot, rng, chunk)]
        boot = {k: np.concatenate([d[k] for d in parts]) for k in point}

    # notes and label counts
    n_pos, n_neg = y.sum(0), n - y.sum(0)
    no_pos = np.flatnonzero(n_pos == 0)
    auc_bad = np.flatnonzero((n_pos == 0) | (n_neg == 0))
    notes: dict[str, list[str]] = {k: [] for k in point}
    used = {k: C for k in point}
    used["macro_auc"] = C - len(auc_bad)
    if len(auc_bad):
        notes["macro_auc"].append(
            f"excluded {len(auc_bad)} label(s) lacking positives or negatives in the test "
            f"set: {_names(auc_bad, label_names)}"
        )
    for tag, t in (("0.5", np.full(C, 0.5)), ("tuned", thr)):
        no_pred = np.flatnonzero(~(p >= t).any(0))
        if len(no_pos):
            for m in ("macro_f1", "macro_recall"):
                notes[f"{m}@{tag}"].append(
                    f"{len(no_pos)} label(s) without positives count as 0 "
                    f"(zero_division=0): {_names(no_pos, label_names)}"
                )
        if len(no_pred):
            notes[f"macro_precision@{tag}"].append(
                f"{len(no_pred)} label(s) never predicted count as 0 (zero_division=0): {_names(no_pred, label_names)}"
            )
    fmax_thr = _fmax(y, p, ones)[1][0]
    notes["fmax"].append(
        f"global threshold {fmax_thr:.2f}" if np.isfinite(fmax_thr) else "undefined: nothing predicted"
    )

    lo_q, hi_q = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    rows = []
    for k, v in point.items():
        b = boot[k][np.isfinite(boot[k])]
        lo, hi = np.percentile(b, [lo_q, hi_q]) if b.size else (np.nan, np.nan)
        if n_boot > 0 and b.size < n_boot:
            notes[k].append(f"{n_boot - b.size} of {n_boot} bootstrap replicates undefined, excluded")
        rows.append(
            {
                "metric": k,
                "value": v,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "n_labels_used": used[k],
                "note": "; ".join(notes[k]),
            }
        )
    overall = pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high", "n_labels_used", "note"])

    # per label, at the tuned thresholds
    aucs = _label_aucs(y, p, ones)[0]
    pred = p >= thr
    tp, fp, fn = (y & pred).sum(0), (~y & pred).sum(0), (y & ~pred).sum(0)
    label_notes = np.where(n_pos == 0, "no positives in test set", np.where(n_neg == 0, "no negatives in test set", ""))
    per_label = pd.DataFrame(
        {
            "label": label_names,
            "support": n_pos.astype(int),
            "prevalence": n_pos / n,
            "auc": aucs,
            "f1": _div(2 * tp, 2 * tp + fp + fn),
            "precision": _div(tp, tp + fp),
            "recall": _div(tp, tp + fn),
            "threshold": thr,
            "note": label_notes,
        }
    )
    return overall, per_label
