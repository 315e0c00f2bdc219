"""Rule preprocess: PTB-XL folder -> Parquet folds, labels table, quality report."""

from ecgxai.data.conditioning import FilterSettings
from ecgxai.data.preprocess import preprocess
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    summary = preprocess(
        snakemake.params.root,
        snakemake.output.signals,
        snakemake.output.labels,
        snakemake.output.quality,
        FilterSettings(**snakemake.params.filters),
        workers=snakemake.threads,
        part_size=snakemake.params.part_size,
        likelihood_min=snakemake.params.labels["likelihood_min"],
        min_count=snakemake.params.labels["min_count"],
    )
    log.info("records per fold:\n%s", summary.to_string(index=False))
