"""Rule predict: probabilities and attention for a split (val = fold 9, test = fold 10)."""

import torch

from ecgxai.data.parquet_io import load_fold_arrays
from ecgxai.evaluation.predictions import write_predictions
from ecgxai.model.checkpoint import load_checkpoint
from ecgxai.model.training import predict
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    model, meta = load_checkpoint(snakemake.input.weights)
    x, y, ids, names = load_fold_arrays(
        snakemake.input.data, snakemake.input.labels, snakemake.params.folds, snakemake.params.label_set
    )
    if names != meta["label_names"]:
        raise ValueError(
            f"{snakemake.input.labels}: label names differ from those the model "
            f"{snakemake.input.weights} was trained on"
        )
    probs, attention = predict(model, x)
    write_predictions(
        snakemake.output[0],
        ids,
        y,
        probs,
        attention,
        names,
        {
            "run": snakemake.wildcards.run,
            "split": snakemake.wildcards.split,
            "folds": list(snakemake.params.folds),
            "label_set": snakemake.params.label_set,
            "attention_step_edges": model.step_to_sample_edges(x.shape[-1]).tolist(),
            "units": {"prob": "sigmoid probability", "attention": "weight per LSTM step, sums to 1"},
        },
    )
    log.info(
        "%s: %d records, %d labels, attention over %d steps",
        snakemake.wildcards.split,
        len(ids),
        len(names),
        attention.shape[1],
    )
