"""Rule render_performance: ROC/PR, training curves, best/worst labels, errors, calibration, Table 1."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.render import render_performance

with logged(snakemake.log[0]) as log:
    written = render_performance(**snakemake.input, outputs=dict(snakemake.output.items()))
    log.info("wrote %d files", len(written))
