"""Rule correlate: Pearson/Spearman agreement of SHAP, LIME and attention over time bins."""

from ecgxai.runlog import logged
from ecgxai.stages.explain import correlate_run

with logged(snakemake.log[0]):
    correlate_run(
        attributions=[snakemake.input.shap, snakemake.input.lime, snakemake.input.attention],
        n_boot=snakemake.params.n_boot,
        seed=snakemake.params.seed,
        per_record=snakemake.output.per_record,
        summary=snakemake.output.summary,
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
    )
