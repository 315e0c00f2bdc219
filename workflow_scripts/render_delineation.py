"""Rule render_delineation: example records in mV with their delineated P, QRS and T waves."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.render import render_delineation

with logged(snakemake.log[0]) as log:
    written = render_delineation(**snakemake.input, **snakemake.output)
    log.info("wrote %s", ", ".join(written))
