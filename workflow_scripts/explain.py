"""Rule explain: SHAP, LIME, attention and faithfulness for selected test records of a run."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.explain import explain

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explain(**snakemake.input, **snakemake.output, **snakemake.params)
