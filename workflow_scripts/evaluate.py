"""Rule evaluate: test metrics with bootstrap intervals, prior baseline, comparison, calibration, context."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.evaluate import evaluate

with logged(snakemake.log[0]):
    evaluate(**snakemake.input, **snakemake.output, **snakemake.params, run=snakemake.wildcards.run)
