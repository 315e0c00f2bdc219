"""Rule ablation: collect the grid's runs into the ablation table (paired against the reference) and figure."""

import json
from pathlib import Path

import torch

from ecgxai.evaluation.ablation import ablation_figure, ablation_table, collect, paired_against_reference, summarize
from ecgxai.report.tables import context_note
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    i, ev = snakemake.input, snakemake.params.evaluate
    runs = [
        {**r, "overall": o, "context": c, "model": m, "history": h, "predictions": p, "thresholds": t}
        for r, o, c, m, h, p, t in zip(
            snakemake.params.runs, i.metrics, i.contexts, i.models, i.histories, i.predictions, i.thresholds
        )
    ]
    per_run = collect(runs, tuple(snakemake.params.shape))
    per_run.to_csv(snakemake.output.per_run, sep="\t", index=False)
    paired = paired_against_reference(
        runs, snakemake.params.reference, n_boot=ev["n_boot"], seed=ev["seed"], ci=ev["ci"]
    )
    paired.to_csv(snakemake.output.paired, sep="\t", index=False)
    summary = summarize(per_run, paired)
    with open(i.contexts[0]) as f:
        note = context_note(json.load(f))
    ablation_table(summary, Path(snakemake.output.table).with_suffix(""), snakemake.params.reference, note)
    ablation_figure(per_run, Path(snakemake.output.figure).with_suffix(""))
    log.info("ablation summary:\n%s", summary.to_string(index=False))
