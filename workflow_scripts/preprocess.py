"""Rule preprocess: PTB-XL folder -> Parquet folds, labels table, quality report."""

from ecgxai.config import FilterSettings
from ecgxai.data.preprocess import preprocess
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    summary = preprocess(
        root=snakemake.params.root,
        out_dir=snakemake.output.signals,
        labels_path=snakemake.output.labels,
        quality_path=snakemake.output.quality,
        settings=FilterSettings(**snakemake.params.filters),
        workers=snakemake.threads,
        part_size=snakemake.params.part_size,
        likelihood_min=snakemake.params.labels["likelihood_min"],
        min_count=snakemake.params.labels["min_count"],
    )
    log.info("records per fold:\n%s", summary.to_string(index=False))
