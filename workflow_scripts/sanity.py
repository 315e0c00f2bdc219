"""Rule sanity: cascading model-parameter randomisation of each explanation method."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.checks import sanity

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = sanity(**snakemake.input, **snakemake.output, **snakemake.params)
    log.info("randomisation (%s):\n%s", out["context"], out["summary"].to_string(index=False))
    log.info("method flags:\n%s", out["flags"].to_string(index=False))
