"""Rule ablation: collect the grid's runs into the ablation table (paired against the reference) and figure."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.ablation import ablation

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    summary = ablation(**snakemake.input, **snakemake.output, **snakemake.params)
    log.info("ablation summary:\n%s", summary.to_string(index=False))
