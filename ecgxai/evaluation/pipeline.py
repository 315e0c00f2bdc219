"""The evaluate stage for one run: test-fold metrics with bootstrap intervals, the prior baseline, the comparison."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow.parquet as pq

from ecgxai.data.parquet_io import read_labels
from ecgxai.evaluation.metrics import evaluate
from ecgxai.evaluation.predictions import read_predictions
from ecgxai.evaluation.reference import comparison_table
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.outputs import write_tsv

log = logging.getLogger(__name__)


def train_prevalence(labels, label_set: str, train_folds) -> np.ndarray:
    """Per-label prevalence over the labelled records of the training folds: the prior baseline's probabilities."""
    _, y, _ = read_labels(labels, label_set)
    folds = pq.read_table(labels, columns=["strat_fold"]).column(0).to_numpy()
    train = np.isin(folds, list(train_folds)) & y.any(axis=1)
    return y[train].mean(axis=0)


def evaluate_run(
    *,
    predictions,
    thresholds,
    labels,
    label_set: str,
    train_folds,
    n_boot: int,
    seed: int,
    ci: float,
    overall,
    per_label,
    prior,
    comparison,
) -> None:
    """Metrics of the run's test predictions and of the prior baseline (every record gets the training folds'
    prevalence, thresholded at it), and both next to the published figures."""
    pred = read_predictions(predictions)
    names = pred["label_names"]
    boot = {"n_boot": n_boot, "seed": seed, "ci": ci}
    ours, ours_per_label = evaluate(pred["y_true"], pred["prob"], read_thresholds(thresholds, names), names, **boot)
    prevalence = train_prevalence(labels, label_set, train_folds)
    baseline, _ = evaluate(pred["y_true"], np.broadcast_to(prevalence, pred["prob"].shape), prevalence, names, **boot)
    table = comparison_table(ours, baseline, label_set)
    write_tsv(ours, overall)
    write_tsv(ours_per_label, per_label)
    write_tsv(baseline, prior)
    write_tsv(table, comparison)
    log.info("test fold, %d records:\n%s", len(pred["ecg_id"]), table.to_string(index=False))
