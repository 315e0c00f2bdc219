"""Rule preprocess: PTB-XL folder -> Parquet folds, labels table, quality report."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.data import preprocess

with logged(snakemake.log[0]) as log:
    summary = preprocess(
        root=snakemake.params.root,
        signals=snakemake.output.signals,
        labels=snakemake.output.labels,
        quality=snakemake.output.quality,
        filters=snakemake.params.filters,
        part_size=snakemake.params.part_size,
        likelihood_min=snakemake.params.labels["likelihood_min"],
        min_count=snakemake.params.labels["min_count"],
        threads=snakemake.threads,
    )
    log.info("records per fold:\n%s", summary.to_string(index=False))
