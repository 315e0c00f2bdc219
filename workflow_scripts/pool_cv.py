"""Rule pool_cv: the ten cross-validation models' test predictions and thresholds, pooled."""

from ecgxai.evaluation.crossval import pool_predictions
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    summary = pool_predictions(
        prediction_paths=snakemake.input.predictions,
        threshold_paths=snakemake.input.thresholds,
        folds=snakemake.params.folds,
        out_predictions=snakemake.output.predictions,
        out_thresholds=snakemake.output.thresholds,
    )
    log.info("pooled out-of-fold predictions: %s", summary)
