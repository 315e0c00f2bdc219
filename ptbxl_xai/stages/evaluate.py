"""The evaluate stage of one run: metrics, prior baseline, comparison, calibration, all with context.

Every table written here carries the run's context columns (ptbxl_xai.evaluation.context), so a
number read out of any of them says which data, how many records and labels, and which split.
"""

from __future__ import annotations

import logging

from ptbxl_xai.evaluation.calibration import reliability_bins
from ptbxl_xai.evaluation.context import CONTEXT_COLUMNS, context_sentence, read_manifest, run_context, with_context
from ptbxl_xai.evaluation.metrics import evaluate as score
from ptbxl_xai.evaluation.predictions import read_predictions
from ptbxl_xai.evaluation.reference import comparison_table, prior_probabilities
from ptbxl_xai.evaluation.thresholds import read_thresholds
from ptbxl_xai.outputs import write_json, write_tsv

log = logging.getLogger(__name__)


def evaluate(
    *,
    predictions,
    thresholds,
    labels,
    manifest,
    overall,
    per_label,
    prior,
    comparison,
    calibration,
    context,
    run: str,
    label_set: str,
    architecture: str,
    scheme: str,
    evaluate: dict,
) -> dict:
    """Score one run's test predictions and write every evaluate output; returns the context.

    `evaluate` is the config's evaluate section: `n_boot`, `seed` and `ci` of the bootstrap intervals.
    """
    n_boot, seed, ci = evaluate["n_boot"], evaluate["seed"], evaluate["ci"]
    pred = read_predictions(predictions)
    names = pred["label_names"]
    test_fold = pred.get("test_fold")
    thr = read_thresholds(thresholds, names, test_fold=test_fold)
    ctx = run_context(read_manifest(manifest), labels, label_set, pred["y_true"], scheme, run, architecture)
    ours, ours_per_label = score(pred["y_true"], pred["prob"], thr, names, n_boot=n_boot, seed=seed, ci=ci)
    prior_p = prior_probabilities(labels, label_set, pred["ecg_id"], test_fold)
    baseline, _ = score(pred["y_true"], prior_p, prior_p, names, n_boot=n_boot, seed=seed, ci=ci)
    table = comparison_table(ours, baseline, label_set, ctx)
    write_tsv(with_context(ours, ctx), overall)
    write_tsv(with_context(ours_per_label, ctx), per_label)
    write_tsv(with_context(baseline, {**ctx, "architecture": "prior (training-fold prevalence)"}), prior)
    write_tsv(table, comparison)
    write_tsv(with_context(reliability_bins(pred["y_true"], pred["prob"], names), ctx), calibration)
    write_json(context, {k: ctx[k] for k in CONTEXT_COLUMNS})
    log.info("%s: %s\n%s", run, context_sentence(ctx), table.to_string(index=False))
    return ctx
