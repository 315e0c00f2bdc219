"""Rule ablation: collect the grid's runs into the ablation table (paired against the reference) and figure."""

import torch

from ecgxai.runlog import logged
from ecgxai.stages.ablation import ablation_run

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    i, o = snakemake.input, snakemake.output
    summary = ablation_run(
        ablation=snakemake.params.ablation,
        runs=snakemake.params.runs,
        reference=snakemake.params.reference,
        evaluate=snakemake.params.evaluate,
        metrics=i.metrics,
        contexts=i.contexts,
        models=i.models,
        histories=i.histories,
        predictions=i.predictions,
        thresholds=i.thresholds,
        shape=tuple(snakemake.params.shape),
        per_run=o.per_run,
        paired=o.paired,
        per_label=o.per_label,
        per_label_table_path=o.per_label_table,
        table=o.table,
        figure=o.figure,
    )
    log.info("ablation summary:\n%s", summary.to_string(index=False))
