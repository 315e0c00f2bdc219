"""Rule ablation: collect the grid's runs into the ablation table and figure."""

import torch

from ecgxai.evaluation.ablation import ablation_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    summary = ablation_run(
        ablation=snakemake.params.ablation,
        runs=snakemake.params.runs,
        metrics=snakemake.input.metrics,
        models=snakemake.input.models,
        histories=snakemake.input.histories,
        shape=tuple(snakemake.params.shape),
        per_run=snakemake.output.per_run,
        table=snakemake.output.table,
        figure=snakemake.output.figure,
    )
    log.info("ablation summary:\n%s", summary.to_string(index=False))
