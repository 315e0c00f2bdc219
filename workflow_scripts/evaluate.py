"""Rule evaluate: test metrics with bootstrap intervals, prior baseline, comparison, calibration, context."""

from ecgxai.runlog import logged
from ecgxai.stages.evaluate import evaluate

with logged(snakemake.log[0]):
    evaluate(**snakemake.input, **snakemake.output, **snakemake.params, run=snakemake.wildcards.run)
