"""Rule viewer: the interactive explanation page for the explained test records."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.render import viewer

with logged(snakemake.log[0]) as log:
    page = viewer(
        **snakemake.input,  # optional inputs flow through by name: beats (delineation), sanity (method flags)
        **snakemake.output,
        **snakemake.params,
        title=f"ECG explanations: {snakemake.wildcards.run}",
    )
    log.info("viewer written to %s (%.1f MB)", page, page.stat().st_size / 1e6)
