"""Rule counterfactuals: what would make each checked positive normal, trained model against randomised."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.counterfactuals import counterfactuals

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = counterfactuals(**snakemake.input, **snakemake.output, **snakemake.params)
    log.info("counterfactuals (%s):\n%s", out["context"], out["summary"].to_string(index=False))
