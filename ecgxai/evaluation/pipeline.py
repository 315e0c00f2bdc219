"""The evaluate stage for one run: metrics, prior baseline, comparison, calibration, all with context.

Every table written here carries the run's context columns (ecgxai.evaluation.context), so a
number read out of any of them says which data, how many records and labels, and which split.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ecgxai.config import SPLITS, cv_splits
from ecgxai.data.parquet_io import read_labels
from ecgxai.evaluation.calibration import reliability_bins
from ecgxai.evaluation.context import CONTEXT_COLUMNS, context_sentence, read_manifest, run_context
from ecgxai.evaluation.metrics import evaluate
from ecgxai.evaluation.predictions import read_predictions
from ecgxai.evaluation.reference import comparison_table
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.outputs import write_json, write_tsv

log = logging.getLogger(__name__)


def with_context(table: pd.DataFrame, ctx: dict) -> pd.DataFrame:
    """The table with the context columns appended (the same value on every row)."""
    out = table.copy()
    for key in CONTEXT_COLUMNS:
        out[key] = ctx[key]
    return out


def prior_probabilities(labels_path, label_set: str, ecg_ids, test_fold=None) -> np.ndarray:
    """The prior baseline: each test record gets its model's training-fold label prevalence [n, C]."""
    import pyarrow.parquet as pq

    ids, y_all, _ = read_labels(labels_path, label_set)
    folds = pq.read_table(labels_path, columns=["strat_fold"]).column(0).to_numpy()
    labelled = y_all.any(axis=1)
    if test_fold is None:  # holdout: one model trained on folds 1-8
        return np.broadcast_to(
            y_all[np.isin(folds, SPLITS["train"]) & labelled].mean(axis=0), (len(ecg_ids), len(y_all[0]))
        ).copy()
    test_fold = np.asarray(test_fold)
    out = np.empty((len(ecg_ids), y_all.shape[1]))
    for k in np.unique(test_fold):  # crossval: the training folds of the model that predicted the record
        out[test_fold == k] = y_all[np.isin(folds, cv_splits(k)["train"]) & labelled].mean(axis=0)
    return out


def evaluate_run(
    *,
    predictions,
    thresholds,
    labels,
    manifest,
    run: str,
    label_set: str,
    architecture: str,
    scheme: str,
    n_boot: int,
    seed: int,
    ci: float,
    overall,
    per_label,
    prior,
    comparison,
    calibration,
    context,
) -> dict:
    """Score one run's test predictions and write every evaluate output; returns the context."""
    pred = read_predictions(predictions)
    names = pred["label_names"]
    test_fold = pred.get("test_fold")
    thr = read_thresholds(thresholds, names, test_fold=test_fold)
    ctx = run_context(read_manifest(manifest), labels, label_set, pred["y_true"], scheme, run, architecture)
    ours, ours_per_label = evaluate(pred["y_true"], pred["prob"], thr, names, n_boot=n_boot, seed=seed, ci=ci)
    prior_p = prior_probabilities(labels, label_set, pred["ecg_id"], test_fold)
    baseline, _ = evaluate(pred["y_true"], prior_p, prior_p, names, n_boot=n_boot, seed=seed, ci=ci)
    table = comparison_table(ours, baseline, label_set, ctx)
    write_tsv(with_context(ours, ctx), overall)
    write_tsv(with_context(ours_per_label, ctx), per_label)
    write_tsv(with_context(baseline, {**ctx, "architecture": "prior (training-fold prevalence)"}), prior)
    write_tsv(table, comparison)
    write_tsv(with_context(reliability_bins(pred["y_true"], pred["prob"], names), ctx), calibration)
    write_json(context, {k: ctx[k] for k in CONTEXT_COLUMNS})
    log.info("%s: %s\n%s", run, context_sentence(ctx), table.to_string(index=False))
    return ctx
