"""Rule predict: probabilities and attention for a split (val = fold 9, test = fold 10)."""

import torch

from ecgxai.model.pipeline import predict_run
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    predict_run(
        data=snakemake.input.data,
        labels=snakemake.input.labels,
        weights=snakemake.input.weights,
        folds=snakemake.params.folds,
        label_set=snakemake.params.label_set,
        run_name=snakemake.wildcards.run,
        split=snakemake.wildcards.split,
        predictions=snakemake.output.predictions,
    )
