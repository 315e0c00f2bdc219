"""Cross-validation over the ten PTB-XL folds: pool the fold models' out-of-fold predictions.

Model k (k = 1..10) tests on fold k, validates on fold k+1 (10 -> 1) and trains on the other
eight (ecgxai.config.cv_splits). Its test predictions and validation-tuned thresholds are pooled
here, so every labelled record is scored once, by the one model that never saw it, and the
pooled table is evaluated like a holdout test fold (ecgxai.evaluation.metrics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ecgxai.evaluation.predictions import read_predictions, write_predictions
from ecgxai.outputs import write_json


def pool_predictions(
    prediction_paths: Sequence[str | Path],
    threshold_paths: Sequence[str | Path],
    folds: Sequence[int],
    out_predictions: str | Path,
    out_thresholds: str | Path,
) -> dict:
    """Concatenate fold k's test predictions (tagged test_fold = k) and collect each fold's thresholds.

    Refuses inconsistent inputs: different label names, a record in two test folds, or a fold
    whose predictions were made on other folds than its own. Returns a summary for the log.
    """
    if not len(prediction_paths) == len(threshold_paths) == len(folds):
        raise ValueError("one prediction table and one thresholds file per fold")
    parts, per_fold, names = [], {}, None
    for path, thr_path, fold in zip(prediction_paths, threshold_paths, folds):
        pred = read_predictions(path)
        if names is None:
            names = pred["label_names"]
        elif pred["label_names"] != names:
            raise ValueError(f"{path}: label names differ from those of the first fold")
        if list(pred["meta"].get("folds", [fold])) != [int(fold)]:
            raise ValueError(f"{path}: predictions of folds {pred['meta'].get('folds')}, expected test fold {fold}")
        with open(thr_path) as f:
            tuned = json.load(f)
        per_fold[str(int(fold))] = tuned["thresholds"]
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
    write_predictions(
        out_predictions,
        ids,
        np.concatenate([p["y_true"] for p, _ in parts]),
        np.concatenate([p["prob"] for p, _ in parts]),
        attention,
        names,
        meta,
        test_fold=np.concatenate([np.full(len(p["ecg_id"]), f) for p, f in parts]),
    )
    write_json(
        out_thresholds, {"label_set": tuned.get("label_set"), "scheme": "crossval", "thresholds_per_fold": per_fold}
    )
    return {"records": int(len(ids)), "per_fold": {f: int(len(p["ecg_id"])) for p, f in parts}}
