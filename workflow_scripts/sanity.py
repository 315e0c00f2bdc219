"""Rule sanity: cascading model-parameter randomisation of each explanation method."""

import torch

from ecgxai.runlog import logged
from ecgxai.stages.checks import sanity_stage, write_sanity

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = sanity_stage(
        weights=snakemake.input.weights,
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        data=snakemake.input.data,
        beats=snakemake.input.get("beats"),
        template=snakemake.input.get("template"),
        explain=snakemake.params.explain,
        checks=snakemake.params.checks,
        blur_sigma_s=snakemake.params.explain["blur_sigma_s"],
    )
    write_sanity(out, outputs=dict(snakemake.output.items()))
    log.info("randomisation (%s):\n%s", out["context"], out["summary"].to_string(index=False))
    log.info("method flags:\n%s", out["flags"].to_string(index=False))
