"""Rule explain_backgrounds: the same records explained once per masking background."""

import torch

from ecgxai.runlog import logged
from ecgxai.stages.explain import explain_backgrounds_stage

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explain_backgrounds_stage(
        weights=snakemake.input.weights,
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        data=snakemake.input.data,
        cfg=snakemake.params.explain,
        bg_cfg=snakemake.params.backgrounds,
        per_record=snakemake.output.per_record,
        beats=snakemake.input.get("beats"),
        template=snakemake.input.get("template"),
    )
