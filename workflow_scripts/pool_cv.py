"""Rule pool_cv: the ten cross-validation models' test predictions and thresholds, pooled."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.train import pool_cv

with logged(snakemake.log[0]) as log:
    summary = pool_cv(
        predictions=snakemake.input.predictions,
        thresholds=snakemake.input.thresholds,
        folds=snakemake.params.folds,
        out_predictions=snakemake.output.predictions,
        out_thresholds=snakemake.output.thresholds,
    )
    log.info("pooled out-of-fold predictions: %s", summary)
