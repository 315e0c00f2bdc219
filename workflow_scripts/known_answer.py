"""Rule known_answer: every method's explanations of the planted records scored against the planted masks."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.known_answer import known_answer

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    known_answer(
        planted=snakemake.input.planted,
        weights=dict(zip(snakemake.params.architectures, snakemake.input.weights)),
        cfg=snakemake.params.cfg,
        per_record=snakemake.output.per_record,
        localisation_table=snakemake.output.localisation_table,
        accuracy=snakemake.output.accuracy,
        delineation=snakemake.output.delineation,
        figure=snakemake.output.figure,
        delineation_method=snakemake.params.delineation_method,
    )
