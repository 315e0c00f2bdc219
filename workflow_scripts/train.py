"""Rules train and train_cv: fit the model on the training folds, select and tune thresholds on the validation fold."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.train import train

with logged(snakemake.log[0]):
    train(**snakemake.input, **snakemake.output, **snakemake.params, run_name=snakemake.wildcards.run,
          threads=snakemake.threads)  # fmt: skip
