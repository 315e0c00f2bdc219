"""The correlate rule's computation. Agreement between explanation maps: Pearson and Spearman per record and label, then a summary.

Maps are [leads, features per lead] in one feature space (waves: P/PR/QRS/ST/T/TP; bins: time bins);
"time" below is the per-lead axis of that space (segments or bins).
Pairs compared for every record and label (when both maps exist):
  * <method> vs attention over the per-lead features (segments or time bins), the method summed over leads
    ("signed") or its absolute value summed over leads ("abs");
  * method vs method over all 12 x n_bins features (signed, abs) and over time (signed, abs).
A constant vector has no correlation: the value is NaN and `reason` says which side was constant.
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ptbxl_xai.evaluation.bootstrap import median_ci

TOL = 1e-12
# one row per record, label, feature space and pair of methods (record_correlations, per feature space)
CORRELATION_COLUMNS = [
    "ecg_id", "label", "feature_space", "method_a", "method_b", "space", "variant", "pearson", "spearman", "n", "reason",
]  # fmt: skip


def pearson(a, b) -> tuple[float, str]:
    """(r, reason); r is NaN and reason non-empty when undefined."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"vectors differ in length: {a.size} vs {b.size}")
    if a.size < 2:
        return float("nan"), "fewer than 2 values"
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan"), "non-finite values"
    da, db = a - a.mean(), b - b.mean()
    na, nb = np.sqrt(da @ da), np.sqrt(db @ db)
    ca, cb = na <= TOL * max(1.0, np.abs(a).max()), nb <= TOL * max(1.0, np.abs(b).max())
    if ca or cb:
        return float("nan"), "constant " + ("a and b" if ca and cb else "a" if ca else "b")
    return float(np.clip(da @ db / (na * nb), -1.0, 1.0)), ""


def spearman(a, b) -> tuple[float, str]:
    """Pearson on average ranks (ties averaged), as scipy.stats.spearmanr."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"vectors differ in length: {a.size} vs {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan"), "non-finite values"
    return pearson(rankdata(a), rankdata(b))


def _views(m: np.ndarray) -> dict:
    """[leads, n_bins] map -> named vectors (space, variant)."""
    return {
        ("time", "signed"): m.sum(0),
        ("time", "abs"): np.abs(m).sum(0),
        ("lead_time", "signed"): m.ravel(),
        ("lead_time", "abs"): np.abs(m).ravel(),
    }


def record_correlations(ecg_id, label, maps: Mapping[str, np.ndarray], attention_bins=None) -> list[dict]:
    """Rows for one record and label. maps: method -> [leads, n_bins]; attention_bins: [n_bins] or None."""
    rows = []

    def add(a_name, b_name, space, variant, a, b):
        r, why_r = pearson(a, b)
        s, why_s = spearman(a, b)
        rows.append(
            dict(
                ecg_id=ecg_id,
                label=label,
                method_a=a_name,
                method_b=b_name,
                space=space,
                variant=variant,
                pearson=r,
                spearman=s,
                n=len(np.ravel(a)),
                reason="; ".join(sorted({w for w in (why_r, why_s) if w})),
            )
        )

    views = {k: _views(np.asarray(v, dtype=np.float64)) for k, v in maps.items()}
    if attention_bins is not None:
        att = np.asarray(attention_bins, dtype=np.float64)
        for name, v in views.items():
            for variant in ("signed", "abs"):
                add(name, "attention", "time", variant, v[("time", variant)], att)
    for a, b in combinations(list(views), 2):  # in the caller's order: shap, lime, ...
        for (space, variant), va in views[a].items():
            add(a, b, space, variant, va, views[b][(space, variant)])
    return rows


def summarize(per_record: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per ([feature_space,] method_a, method_b, space, variant, statistic, labels): mean, median, CI, n.

    The CI resamples records (all labels of a record together) when `ecg_id` is a column. `labels`:
    "predicted" (rows whose label the model predicted, when a `predicted` column says so: the headline)
    and "all explained" (every explained record-label pair, the pooled secondary figure).
    """
    keys = (["feature_space"] if "feature_space" in per_record.columns else []) + [
        "method_a",
        "method_b",
        "space",
        "variant",
    ]
    cols = keys + ["statistic", "labels", "mean", "median", "ci_low", "ci_high", "n", "n_records", "n_nan"]
    rows = []
    if per_record.empty:
        return pd.DataFrame(columns=cols)
    subsets = [("all explained", per_record)]
    if "predicted" in per_record:
        subsets.insert(0, ("predicted", per_record[per_record["predicted"].astype(bool)]))
    for labels, part in subsets:
        for key, g in part.groupby(keys, sort=True):
            for stat in ("pearson", "spearman"):
                x = g[stat].to_numpy(dtype=np.float64)
                fin = np.isfinite(x)
                ok = x[fin]
                rec = g["ecg_id"].to_numpy()[fin] if "ecg_id" in g else None
                lo, hi = median_ci(ok, n_boot, seed=seed, clusters=rec)
                rows.append(
                    dict(
                        zip(keys, key),
                        statistic=stat,
                        labels=labels,
                        mean=float(ok.mean()) if ok.size else float("nan"),
                        median=float(np.median(ok)) if ok.size else float("nan"),
                        ci_low=lo,
                        ci_high=hi,
                        n=int(ok.size),
                        n_records=int(len(np.unique(rec))) if rec is not None else int(ok.size),
                        n_nan=int(x.size - ok.size),
                    )
                )
    return pd.DataFrame(rows, columns=cols)


COMPARED = ("shap", "lime", "shap_gradient")  # maps compared with attention and with each other


def correlations_from_attributions(attributions: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0):
    """(per_record, summary) from a long attributions table (ecg_id, label, method, [feature_space,] lead, bin, value).

    Each record is compared within each feature space it was explained in (waves, bins); a table
    without `feature_space` is time bins. Attention is stored repeated over leads (it has no lead
    axis), so its profile is read from one lead.
    """
    rows = []
    if "feature_space" not in attributions.columns:
        attributions = attributions.assign(feature_space="bins")
    leads = list(dict.fromkeys(attributions["lead"]))
    for (ecg_id, label, kind), g in attributions.groupby(["ecg_id", "label", "feature_space"], sort=True):
        maps, att = {}, None
        for method, m in g.groupby("method", sort=False):
            grid = m.pivot(index="lead", columns="bin", values="value").reindex(leads).to_numpy()
            if method == "attention":
                att = grid[0]
            elif method in COMPARED:
                maps[method] = grid
        ordered = {k: maps[k] for k in COMPARED if k in maps}
        rows += [dict(r, feature_space=kind) for r in record_correlations(ecg_id, label, ordered, att)]
    per_record = pd.DataFrame(
        rows,
        columns=CORRELATION_COLUMNS,
    )
    return per_record, summarize(per_record, n_boot=n_boot, seed=seed)
