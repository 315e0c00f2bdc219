"""Rule correlate: Pearson/Spearman agreement of SHAP, LIME and attention over time bins."""

from ecgxai.runlog import logged
from ecgxai.stages.explain import correlate

with logged(snakemake.log[0]):
    correlate(**snakemake.input, **snakemake.output, **snakemake.params)
