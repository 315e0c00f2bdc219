"""Rule ablation: collect the grid's runs into the ablation table and figure."""

from pathlib import Path

import torch

from ecgxai.evaluation.ablation import ablation_figure, ablation_table, collect, summarize
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    results = Path(snakemake.input.metrics[0]).parents[2]
    per_run = collect(snakemake.params.ablation, results, tuple(snakemake.params.shape))
    per_run.to_csv(snakemake.output.per_run, sep="\t", index=False)
    summary = summarize(per_run)
    ablation_table(summary, Path(snakemake.output.table).with_suffix(""))
    ablation_figure(per_run, Path(snakemake.output.figure).with_suffix(""))
    log.info("ablation summary:\n%s", summary.to_string(index=False))
