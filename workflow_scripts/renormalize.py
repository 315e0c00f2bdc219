"""Rule renormalize: the preprocessed records under the other input normalisation (ptbxl_xai.data.normalization)."""

import logging

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.data import renormalize

with logged(snakemake.log[0]):
    stats = renormalize(
        signals=snakemake.input.signals,
        out_signals=snakemake.output.signals,
        normalize=snakemake.wildcards.normalize,
        train_folds=snakemake.params.train_folds,
    )
    logging.getLogger("ptbxl_xai.renormalize").info(
        "%s -> %s: %s over %d records", snakemake.input.signals, snakemake.output.signals,
        snakemake.wildcards.normalize, stats["records"],
    )  # fmt: skip
