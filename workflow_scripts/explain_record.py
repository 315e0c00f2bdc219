"""Rule explain_record: predictions, explanations and a viewer page for a user's own ECG."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.explain_record import explain_record

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explain_record(**snakemake.input, **snakemake.output, **snakemake.params, name=snakemake.wildcards.name)
