"""Rule render_explanations: Figures 1-3, beat-aligned Figure 2, faithfulness curves, agreement, faithfulness and
background tables."""

from ecgxai.report.render import render_explanations
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    written = render_explanations(
        **snakemake.input,
        folds=snakemake.params.folds,
        length_s=snakemake.params.length_s,
        outputs=dict(snakemake.output.items()),
    )
    log.info("wrote %d files", len(written))
