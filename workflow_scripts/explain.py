"""Rule explain: SHAP, LIME, attention and faithfulness for selected test records of a run."""

import torch

from ecgxai.runlog import logged
from ecgxai.stages.explain import explain

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explain(**snakemake.input, **snakemake.output, **snakemake.params)
