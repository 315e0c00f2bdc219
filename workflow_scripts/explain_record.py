"""Rule explain_record: predictions, explanations and a viewer page for a user's own ECG."""

import torch

from ecgxai.runlog import logged
from ecgxai.stages.explain_record import explain_user_record

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    explain_user_record(
        record=snakemake.input.record,
        weights=snakemake.input.weights,
        thresholds=snakemake.input.thresholds,
        data=snakemake.input.data,
        filters=snakemake.params.filters,
        explain=snakemake.params.explain,
        name=snakemake.wildcards.name,
        predictions=snakemake.output.predictions,
        attributions=snakemake.output.attributions,
        viewer=snakemake.output.viewer,
        template=snakemake.input.get("template"),
        delineation_method=snakemake.params.delineation_method,
    )
