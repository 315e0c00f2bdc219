"""Rule viewer: the interactive explanation page for the explained test records."""

from ecgxai.report.render import render_run_viewer
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    page = render_run_viewer(
        **snakemake.input,  # optional inputs flow through by name: beats (delineation), sanity (method flags)
        folds=snakemake.params.folds,
        viewer=snakemake.output.viewer,
        title=f"ECG explanations: {snakemake.wildcards.run}",
        feature_kind=snakemake.params.get("features"),
    )
    log.info("viewer written to %s (%.1f MB)", page, page.stat().st_size / 1e6)
