"""Rule normal_template: median P/PR/QRS/ST/T/TP shapes per lead of NORM-only training records."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.explain import normal_template

with logged(snakemake.log[0]):
    normal_template(**snakemake.input, **snakemake.output)
