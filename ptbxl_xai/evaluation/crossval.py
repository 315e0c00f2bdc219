"""Cross-validation over the ten PTB-XL folds: pool the fold models' out-of-fold predictions.

Model k (k = 1..10) tests on fold k, validates on fold k+1 (10 -> 1) and trains on the other
eight (ptbxl_xai.config.cv_splits). Its test predictions and validation-tuned thresholds are pooled
here, so every labelled record is scored once, by the one model that never saw it, and the
pooled table is evaluated like a holdout test fold (ptbxl_xai.evaluation.metrics).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pool_folds(preds: Sequence[dict], tuned: Sequence[dict], folds: Sequence[int], sources=None) -> tuple[dict, dict]:
    """Fold k's test predictions (`read_predictions` dicts, tagged test_fold = k) concatenated, and each fold's
    thresholds (the thresholds JSON of its model) collected.

    Refuses inconsistent inputs: different label names, a record in two test folds, or a fold whose predictions
    were made on other folds than its own; `sources` (one name per fold, e.g. its file) name the culprit.
    Returns the pooled predictions (the arguments of `write_predictions`, as a dict) and the pooled thresholds.
    """
    sources = list(sources) if sources is not None else [f"fold {f}" for f in folds]
    if not len(preds) == len(tuned) == len(folds) == len(sources):
        raise ValueError("one prediction table and one thresholds file per fold")
    parts, per_fold, names = [], {}, None
    for pred, thr, fold, source in zip(preds, tuned, folds, sources):
        if names is None:
            names = pred["label_names"]
        elif pred["label_names"] != names:
            raise ValueError(f"{source}: label names differ from those of the first fold")
        if list(pred["meta"].get("folds", [fold])) != [int(fold)]:
            raise ValueError(f"{source}: predictions of folds {pred['meta'].get('folds')}, expected test fold {fold}")
        per_fold[str(int(fold))] = thr["thresholds"]
        parts.append((pred, int(fold)))
    ids = np.concatenate([p["ecg_id"] for p, _ in parts])
    dup = np.unique(ids)[np.unique(ids, return_counts=True)[1] > 1]
    if dup.size:
        raise ValueError(f"records in more than one test fold: {dup[:5].tolist()}")
    steps = {p["attention"].shape[1] for p, _ in parts}
    attention = np.concatenate([p["attention"] for p, _ in parts]) if len(steps) == 1 else np.zeros((len(ids), 0))
    first = parts[0][0]["meta"]
    meta = {
        **{k: v for k, v in first.items() if k not in ("folds", "split", "label_names")},
        "split": "crossval",
        "folds": [int(f) for f in folds],
        "scheme": "crossval: model k tests fold k, validates fold k+1 (10 -> 1), trains on the rest",
    }
    pooled = dict(
        ecg_ids=ids,
        y_true=np.concatenate([p["y_true"] for p, _ in parts]),
        probs=np.concatenate([p["prob"] for p, _ in parts]),
        attention=attention,
        label_names=names,
        meta=meta,
        test_fold=np.concatenate([np.full(len(p["ecg_id"]), f) for p, f in parts]),
    )
    thresholds = {"label_set": tuned[-1].get("label_set"), "scheme": "crossval", "thresholds_per_fold": per_fold}
    return pooled, thresholds
