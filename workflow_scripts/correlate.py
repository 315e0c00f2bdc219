"""Rule correlate: Pearson/Spearman agreement of SHAP, LIME and attention over time bins."""

from ptbxl_xai.runlog import logged
from ptbxl_xai.stages.explain import correlate

with logged(snakemake.log[0]):
    correlate(**snakemake.input, **snakemake.output, **snakemake.params)
