"""Rules predict and predict_cv: probabilities and attention for a split (holdout: val = fold 9, test = fold 10)."""

import torch

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.train import predict

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    predict(**snakemake.input, **snakemake.output, **snakemake.params, run_name=snakemake.wildcards.run,
            split=snakemake.wildcards.split)  # fmt: skip
