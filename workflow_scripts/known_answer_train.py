"""Rule known_answer_train: one architecture trained on the planted pairs."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.known_answer import known_answer_train

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    known_answer_train(
        planted=snakemake.input.planted,
        weights=snakemake.output.weights,
        history=snakemake.output.history,
        model=snakemake.params.model,
        train=snakemake.params.train,
        threads=snakemake.threads,
    )
