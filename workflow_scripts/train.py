"""Rule train: fit the model on folds 1-8, select on fold 9, tune thresholds on fold 9."""

from ecgxai.model.pipeline import train_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    train_run(
        data=snakemake.input.data,
        labels=snakemake.input.labels,
        run_name=snakemake.wildcards.run,
        run=snakemake.params.run,
        folds=snakemake.params.folds,
        threads=snakemake.threads,
        weights=snakemake.output.weights,
        history=snakemake.output.history,
        thresholds=snakemake.output.thresholds,
        run_config=snakemake.output.config,
    )
