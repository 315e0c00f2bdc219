"""Rule render_explanations: Figures 1-3, beat-aligned Figure 2, faithfulness curves, agreement, faithfulness and
background tables."""

from pathlib import Path

from ecgxai.report.render import read_attributions, render_explanations
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    i = snakemake.input
    written = render_explanations(
        read_attributions(i.shap, i.lime, i.attention),
        i.correlations,
        i.correlation_summary,
        i.curves,
        i.faithfulness,
        i.data,
        snakemake.params.folds,
        Path(snakemake.output.fig1_attention_distribution).parent,
        Path(snakemake.output.correlation_table).parent,
        snakemake.params.length_s,
        beats_dir=i.get("beats"),
        backgrounds=i.backgrounds,
    )
    log.info("wrote %d files", len(written))
