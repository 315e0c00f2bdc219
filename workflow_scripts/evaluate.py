"""Rule evaluate: test-fold metrics with bootstrap intervals, the prior baseline, the comparison."""

import numpy as np
import pyarrow.parquet as pq

from ecgxai.data.parquet_io import read_labels
from ecgxai.evaluation.metrics import evaluate
from ecgxai.evaluation.predictions import read_predictions
from ecgxai.evaluation.reference import comparison_table
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    pred = read_predictions(snakemake.input.predictions)
    names = pred["label_names"]
    thresholds = read_thresholds(snakemake.input.thresholds, names)
    ev = snakemake.params.evaluate
    overall, per_label = evaluate(
        pred["y_true"], pred["prob"], thresholds, names, n_boot=ev["n_boot"], seed=ev["seed"], ci=ev["ci"]
    )

    # Prior baseline: every test record gets the training folds' label prevalence.
    ids, y_all, _ = read_labels(snakemake.input.labels, snakemake.params.label_set)
    folds = pq.read_table(snakemake.input.labels, columns=["strat_fold"]).column(0).to_numpy()
    train = np.isin(folds, snakemake.params.train_folds) & y_all.any(axis=1)
    prevalence = y_all[train].mean(axis=0)
    prior_probs = np.broadcast_to(prevalence, pred["prob"].shape)
    prior, _ = evaluate(
        pred["y_true"], prior_probs, prevalence, names, n_boot=ev["n_boot"], seed=ev["seed"], ci=ev["ci"]
    )

    overall.to_csv(snakemake.output.overall, sep="\t", index=False)
    per_label.to_csv(snakemake.output.per_label, sep="\t", index=False)
    prior.to_csv(snakemake.output.prior, sep="\t", index=False)
    comparison = comparison_table(overall, prior, snakemake.params.label_set)
    comparison.to_csv(snakemake.output.comparison, sep="\t", index=False)
    log.info("test fold, %d records:\n%s", len(pred["ecg_id"]), comparison.to_string(index=False))
