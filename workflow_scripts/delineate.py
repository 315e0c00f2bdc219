"""Rule delineate: preprocessed signals -> beats with global P/QRS/T boundaries, per-record summary."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.data import delineate

with logged(snakemake.log[0]) as log:
    summary = delineate(**snakemake.input, **snakemake.output, **snakemake.params, threads=snakemake.threads)
    ok = summary[summary["status"] == "ok"]
    log.info(
        "records: %d ok, %d failed; median over ok records: %s",
        len(ok),
        len(summary) - len(ok),
        ok[["heart_rate_bpm", "rr_irregularity", "qrs_ms", "pr_ms", "qt_ms"]].median().round(3).to_dict(),
    )
