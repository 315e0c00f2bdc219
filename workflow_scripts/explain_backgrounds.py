"""Rule explain_backgrounds: the same records explained once per masking background."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.explain import explain_backgrounds

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explain_backgrounds(**snakemake.input, **snakemake.output, **snakemake.params)
