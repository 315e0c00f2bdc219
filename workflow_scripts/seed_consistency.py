"""Rule seed_consistency: agreement of the explanations of runs trained with different seeds."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.checks import seed_consistency

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = seed_consistency(**snakemake.input, **snakemake.output, **snakemake.params)
    log.info("seed consistency of %s:\n%s", snakemake.params.runs, out["summary"].to_string(index=False))
