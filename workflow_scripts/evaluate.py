"""Rule evaluate: test-fold metrics with bootstrap intervals, the prior baseline, the comparison."""

from ecgxai.evaluation.pipeline import evaluate_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    evaluate_run(
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        labels=snakemake.input.labels,
        label_set=snakemake.params.label_set,
        train_folds=snakemake.params.train_folds,
        n_boot=snakemake.params.evaluate["n_boot"],
        seed=snakemake.params.evaluate["seed"],
        ci=snakemake.params.evaluate["ci"],
        overall=snakemake.output.overall,
        per_label=snakemake.output.per_label,
        prior=snakemake.output.prior,
        comparison=snakemake.output.comparison,
    )
