"""Rule expert_rules: alignment with cited expert rules, the rule-region deletion probe, the background check."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.checks import expert_rules

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = expert_rules(**snakemake.input, **snakemake.output, **snakemake.params)
    log.info("expert-rule alignment (%s):\n%s", out["context"], out["alignment"].to_string(index=False))
    log.info("deletion probe:\n%s", out["probe"].to_string(index=False))
    log.info("background as input:\n%s", out["background"].to_string(index=False))
