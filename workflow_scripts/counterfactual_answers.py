"""Rule counterfactual_answers: what would make the viewer's first records normal, for its median beats."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.counterfactuals import counterfactual_answers

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    counterfactual_answers(**snakemake.input, **snakemake.output, **snakemake.params)
