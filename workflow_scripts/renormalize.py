"""Rule renormalize: the preprocessed records under the other input normalisation (ecgxai.data.normalization)."""

import logging

from ecgxai.data.normalization import renormalize_tree
from ecgxai.runlog import logged

with logged(snakemake.log[0]):
    stats = renormalize_tree(
        snakemake.input.signals,
        snakemake.output.signals,
        snakemake.wildcards.normalize,
        train_folds=snakemake.params.train_folds,
    )
    logging.getLogger("ecgxai.renormalize").info(
        "%s -> %s: %s over %d records", snakemake.input.signals, snakemake.output.signals,
        snakemake.wildcards.normalize, stats["records"],
    )  # fmt: skip
