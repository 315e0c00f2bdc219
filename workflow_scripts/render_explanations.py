"""Rule render_explanations: Figures 1-3, beat-aligned Figure 2, faithfulness curves, agreement, faithfulness and
background tables."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.render import render_explanations

with logged(snakemake.log[0]) as log:
    written = render_explanations(**snakemake.input, **snakemake.params, outputs=dict(snakemake.output.items()))
    log.info("wrote %d files", len(written))
