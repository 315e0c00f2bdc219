"""Rule evaluate: test metrics with bootstrap intervals, prior baseline, comparison, calibration, context."""

from ecgxai.evaluation.context import context_sentence
from ecgxai.evaluation.run_evaluation import evaluate_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    ev = snakemake.params.evaluate
    ctx = evaluate_run(
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        labels=snakemake.input.labels,
        manifest=snakemake.input.manifest,
        run=snakemake.wildcards.run,
        label_set=snakemake.params.label_set,
        architecture=snakemake.params.architecture,
        scheme=snakemake.params.scheme,
        n_boot=ev["n_boot"],
        seed=ev["seed"],
        ci=ev["ci"],
        out_overall=snakemake.output.overall,
        out_per_label=snakemake.output.per_label,
        out_prior=snakemake.output.prior,
        out_comparison=snakemake.output.comparison,
        out_calibration=snakemake.output.calibration,
        out_context=snakemake.output.context,
    )
    log.info("evaluated %s: %s", snakemake.wildcards.run, context_sentence(ctx))
