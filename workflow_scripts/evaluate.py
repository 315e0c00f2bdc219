"""Rule evaluate: test metrics with bootstrap intervals, prior baseline, comparison, calibration, context."""

from ecgxai.evaluation.pipeline import evaluate_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    evaluate_run(
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        labels=snakemake.input.labels,
        manifest=snakemake.input.manifest,
        run=snakemake.wildcards.run,
        label_set=snakemake.params.label_set,
        architecture=snakemake.params.architecture,
        scheme=snakemake.params.scheme,
        n_boot=snakemake.params.evaluate["n_boot"],
        seed=snakemake.params.evaluate["seed"],
        ci=snakemake.params.evaluate["ci"],
        overall=snakemake.output.overall,
        per_label=snakemake.output.per_label,
        prior=snakemake.output.prior,
        comparison=snakemake.output.comparison,
        calibration=snakemake.output.calibration,
        context=snakemake.output.context,
    )
