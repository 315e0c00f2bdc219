"""Multi-label evaluation with bootstrap confidence intervals.

Every metric is computed from per-record weights w [B, n]: the point estimate
uses w = 1, a bootstrap replicate uses w = how often each record was drawn.
A replicate is then a weighted metric over the original records, which equals
the metric on the resampled set exactly and lets all replicates be computed
with matrix products instead of re-running scikit-learn B times.

Conventions (shared with ptbxl_xai.evaluation.thresholds):
- a label is predicted iff prob >= threshold;
- precision/recall/F1 with a zero denominator count as 0 (scikit-learn's
  zero_division=0), and a note says so;
- ROC-AUC is undefined for a label without positives or without negatives in
  the test set: it is NaN per label (with a note) and left out of the macro
  mean, and n_labels_used says how many labels the mean covers.
- One label set for the headline macro metrics: macro AUC, F1, precision and
  recall all average the labels that have positives and negatives in the test
  set (the "evaluable" labels). The versions over every label of the set, where
  labels without a test positive count as 0, are kept as `*_all_labels`.
- Intervals follow the PTB-XL benchmark (ptbxl_xai.evaluation.bootstrap): the
  evaluable labels are fixed by the point estimate, and a replicate lacking a
  positive for one of them is drawn again.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ptbxl_xai.evaluation import bootstrap
from ptbxl_xai.evaluation.calibration import brier_ece

FMAX_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)  # CAFA-style global threshold grid


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


def _macro(v: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return v[:, cols].mean(1) if cols.size else np.full(len(v), np.nan)


def _threshold_metrics(y, pred, w, labels=None) -> dict[str, np.ndarray]:
    """Label-based and example-based metrics of binary predictions, one value per weight row.

    macro_* average the `labels` columns (default: all); macro_*_all_labels average every column.
    """
    yf, pf = y.astype(np.float64), pred.astype(np.float64)
    tp, fp, fn = w @ (yf * pf), w @ ((1 - yf) * pf), w @ (yf * (1 - pf))  # [B, C]
    support = tp + fn
    f1, prec, rec = _div(2 * tp, 2 * tp + fp + fn), _div(tp, tp + fp), _div(tp, support)
    TP, FP, FN = tp.sum(1), fp.sum(1), fn.sum(1)
    W, C = w.sum(1), y.shape[1]
    cols = np.arange(C) if labels is None else np.asarray(labels)
    return {
        "macro_f1": _macro(f1, cols),
        "micro_f1": _div(2 * TP, 2 * TP + FP + FN),
        "weighted_f1": _div((f1 * support).sum(1), support.sum(1)),
        "macro_precision": _macro(prec, cols),
        "micro_precision": _div(TP, TP + FP),
        "macro_recall": _macro(rec, cols),
        "micro_recall": _div(TP, TP + FN),
        "hamming_loss": (w @ (y != pred).sum(1)) / (W * C),
        "subset_accuracy": (w @ (y == pred).all(1)) / W,
        "macro_f1_all_labels": f1.mean(1),
        "macro_precision_all_labels": prec.mean(1),
        "macro_recall_all_labels": rec.mean(1),
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


def evaluable_labels(y_true) -> np.ndarray:
    """Indices of the labels with at least one positive and one negative record (AUC defined)."""
    y = np.asarray(y_true) > 0
    pos = y.sum(0)
    return np.flatnonzero((pos > 0) & (pos < len(y)))


def _all_metrics(y, p, thresholds, w, labels=None) -> dict[str, np.ndarray]:
    """Every overall metric for each weight row of w [B, n] -> {name: [B]}.

    `labels`: the label set of the macro metrics (default: the evaluable labels of y). A macro
    AUC averages those of them that are defined in the replicate (all, under the benchmark scheme).
    `thresholds` is [C] or, for pooled cross-validation folds, [n, C] (each record its model's).
    """
    labels = evaluable_labels(y) if labels is None else np.asarray(labels)
    aucs = _label_aucs(y, p, w)[:, labels]
    valid = np.isfinite(aucs)
    cnt = valid.sum(1)
    out = {"macro_auc": np.where(cnt > 0, np.where(valid, aucs, 0).sum(1) / np.maximum(cnt, 1), np.nan)}
    out["micro_auc"] = _micro_auc(y, p, w)
    for tag, thr in (("0.5", 0.5), ("tuned", thresholds)):
        for name, v in _threshold_metrics(y, p >= thr, w, labels).items():
            out[f"{name}@{tag}"] = v
    out["fmax"] = _fmax(y, p, w)[0]
    brier, ece = brier_ece(y, p, w)  # [B, C] each
    out["brier"] = _macro(brier, labels)
    out["ece"] = _macro(ece, labels)
    return out


def bootstrap_replicates(y, p, thresholds, n_boot: int, seed: int, labels=None, max_draws=None):
    """({metric: [n_boot] replicate values}, BootstrapDraws) under the benchmark scheme."""
    labels = evaluable_labels(y) if labels is None else np.asarray(labels)
    n, C = y.shape
    draws = bootstrap.draw(y, n, n_boot, np.random.default_rng(seed), required=labels, max_draws=max_draws)
    chunk = bootstrap.chunk_size(n, C)
    parts = [
        _all_metrics(y, p, thresholds, w[a : a + chunk], labels) for w in draws.weights for a in range(0, len(w), chunk)
    ]
    keys = parts[0].keys() if parts else []
    return {k: np.concatenate([d[k] for d in parts]) for k in keys}, draws


def _names(idx, label_names) -> str:
    shown = [str(label_names[i]) for i in idx[:10]]
    return ", ".join(shown) + (", ..." if len(idx) > 10 else "")


def _thresholds(thresholds, n: int, C: int) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim == 2:
        if t.shape != (n, C):
            raise ValueError(f"per-record thresholds must be [n, C] = [{n}, {C}], got {t.shape}")
        return t.copy()
    return np.broadcast_to(t, (C,)).copy()


OVERALL_COLUMNS = ["metric", "value", "ci_low", "ci_high", "n_labels_used", "note", "bootstrap"]


def evaluate(
    y_true,
    probs,
    thresholds,
    label_names: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    max_draws: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Overall metrics with percentile bootstrap CIs, and per-label metrics.

    overall: metric, value, ci_low, ci_high, n_labels_used, note, bootstrap. Metric names:
    macro_auc, micro_auc, {macro,micro,weighted}_f1@{0.5,tuned},
    {macro,micro}_{precision,recall}@{0.5,tuned}, macro_{f1,precision,recall}_all_labels@..,
    hamming_loss@.., subset_accuracy@.., fmax, brier, ece. n_boot=0 skips the bootstrap (CIs NaN).
    `thresholds`: [C], or [n, C] when each record was predicted by its own model (cross-validation).
    per_label: label, support, prevalence, auc, f1, precision, recall (at the
    tuned threshold), threshold (median over records for [n, C]), brier, ece, note.
    """
    y, p = _check(y_true, probs)
    n, C = y.shape
    thr = _thresholds(thresholds, n, C)
    label_names = [str(s) for s in label_names]
    if len(label_names) != C:
        raise ValueError(f"{len(label_names)} label names for {C} labels")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")

    labels = evaluable_labels(y)
    ones = np.ones((1, n))
    point = {k: float(v[0]) for k, v in _all_metrics(y, p, thr, ones, labels).items()}
    boot, draws = bootstrap_replicates(y, p, thr, n_boot, seed, labels, max_draws)
    boot = boot or {k: np.empty(0) for k in point}

    # notes and label counts
    n_pos, n_neg = y.sum(0), n - y.sum(0)
    no_pos = np.flatnonzero(n_pos == 0)
    auc_bad = np.flatnonzero((n_pos == 0) | (n_neg == 0))
    notes: dict[str, list[str]] = {k: [] for k in point}
    used = {
        k: (C if k.split("@")[0].endswith("_all_labels") or not k.startswith("macro") else len(labels)) for k in point
    }
    used["brier"] = used["ece"] = len(labels)
    if len(auc_bad):
        for k in point:
            if used[k] == len(labels) and (k.startswith("macro") or k in ("brier", "ece")):
                notes[k].append(
                    f"over the {len(labels)} labels with test positives and negatives; excluded {len(auc_bad)}: "
                    f"{_names(auc_bad, label_names)}"
                )
    for tag, t in (("0.5", np.full(C, 0.5)), ("tuned", thr)):
        no_pred = np.flatnonzero(~(p >= t).any(0))
        if len(no_pos):
            for m in ("macro_f1_all_labels", "macro_recall_all_labels"):
                notes[f"{m}@{tag}"].append(
                    f"{len(no_pos)} label(s) without positives count as 0 "
                    f"(zero_division=0): {_names(no_pos, label_names)}"
                )
        if len(no_pred):
            for m in ("macro_precision", "macro_precision_all_labels"):
                cols = no_pred if m.endswith("_all_labels") else np.intersect1d(no_pred, labels)
                if len(cols):
                    notes[f"{m}@{tag}"].append(
                        f"{len(cols)} label(s) never predicted count as 0 (zero_division=0): {_names(cols, label_names)}"
                    )
    fmax_thr = _fmax(y, p, ones)[1][0]
    notes["fmax"].append(
        f"global threshold {fmax_thr:.2f}" if np.isfinite(fmax_thr) else "undefined: nothing predicted"
    )

    rows = []
    for k, v in point.items():
        b = boot[k][np.isfinite(boot[k])]
        lo, hi = bootstrap.percentile_ci(b, ci)
        if n_boot > 0 and b.size < n_boot:
            notes[k].append(f"{n_boot - b.size} of {n_boot} bootstrap replicates undefined, excluded")
        rows.append(
            {
                "metric": k,
                "value": v,
                "ci_low": lo,
                "ci_high": hi,
                "n_labels_used": used[k],
                "note": "; ".join(notes[k]),
                "bootstrap": draws.note,
            }
        )
    overall = pd.DataFrame(rows, columns=OVERALL_COLUMNS)

    # per label, at the tuned thresholds
    aucs = _label_aucs(y, p, ones)[0]
    pred = p >= thr
    tp, fp, fn = (y & pred).sum(0), (~y & pred).sum(0), (y & ~pred).sum(0)
    brier, ece = brier_ece(y, p, ones)
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
            "threshold": np.median(thr, axis=0) if thr.ndim == 2 else thr,
            "brier": brier[0],
            "ece": ece[0],
            "note": label_notes,
        }
    )
    return overall, per_label


PAIRED_METRICS = ("macro_auc", "macro_f1@tuned", "macro_f1@0.5", "fmax", "brier")
PAIRED_COLUMNS = [
    "metric",
    "value_a",
    "value_b",
    "delta",
    "ci_low",
    "ci_high",
    "p_value",
    "n_records",
    "n_labels_used",
    "n_boot",
    "bootstrap",
]


def paired_comparison(
    y_true,
    probs_a,
    thresholds_a,
    probs_b,
    thresholds_b,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    metrics: Sequence[str] = PAIRED_METRICS,
    max_draws: int | None = None,
) -> pd.DataFrame:
    """Paired bootstrap of run B minus run A on the same test records (same rows, same labels).

    Both runs are scored on each replicate's records, so the difference's interval reflects only
    how the runs differ, not which records were drawn. delta = B - A at the point estimate; CI:
    percentile of the replicate differences; p_value: two-sided, ptbxl_xai.evaluation.bootstrap.paired_p_value.
    """
    y, pa = _check(y_true, probs_a)
    _, pb = _check(y_true, probs_b)
    n, C = y.shape
    ta, tb = _thresholds(thresholds_a, n, C), _thresholds(thresholds_b, n, C)
    labels = evaluable_labels(y)
    ones = np.ones((1, n))
    point_a, point_b = _all_metrics(y, pa, ta, ones, labels), _all_metrics(y, pb, tb, ones, labels)
    draws = bootstrap.draw(y, n, n_boot, np.random.default_rng(seed), required=labels, max_draws=max_draws)
    chunk = bootstrap.chunk_size(n, C)
    deltas: dict[str, list] = {m: [] for m in metrics}
    for w in draws.weights:
        for a in range(0, len(w), chunk):
            ma, mb = (
                _all_metrics(y, pa, ta, w[a : a + chunk], labels),
                _all_metrics(y, pb, tb, w[a : a + chunk], labels),
            )
            for m in metrics:
                deltas[m].append(mb[m] - ma[m])
    rows = []
    for m in metrics:
        d = np.concatenate(deltas[m]) if deltas[m] else np.empty(0)
        observed = float(point_b[m][0] - point_a[m][0])
        lo, hi = bootstrap.percentile_ci(d, ci)
        rows.append(
            {
                "metric": m,
                "value_a": float(point_a[m][0]),
                "value_b": float(point_b[m][0]),
                "delta": observed,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": bootstrap.paired_p_value(d, observed),
                "n_records": n,
                "n_labels_used": len(labels) if m != "micro_auc" else C,
                "n_boot": int(np.isfinite(d).sum()),
                "bootstrap": draws.note,
            }
        )
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)
