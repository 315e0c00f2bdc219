"""Rule seed_consistency: agreement of the explanations of runs trained with different seeds."""

import torch

from ecgxai.outputs import write_tsv
from ecgxai.runlog import logged
from ecgxai.stages.checks import seed_consistency_stage

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = seed_consistency_stage(
        weights=dict(zip(snakemake.params.runs, snakemake.input.weights)),
        predictions=snakemake.input.predictions[0],
        thresholds=snakemake.input.thresholds[0],
        data=snakemake.input.data,
        beats=snakemake.input.get("beats"),
        template=snakemake.input.get("template"),
        explain=snakemake.params.explain,
        checks=snakemake.params.checks,
        blur_sigma_s=snakemake.params.explain["blur_sigma_s"],
    )
    write_tsv(out["records"], snakemake.output.records)
    write_tsv(out["summary"], snakemake.output.summary)
    log.info("seed consistency of %s:\n%s", snakemake.params.runs, out["summary"].to_string(index=False))
