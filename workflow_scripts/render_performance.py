"""Rule render_performance: ROC/PR, training curves, best/worst labels, errors, calibration, Table 1."""

from pathlib import Path

from ecgxai.evaluation.predictions import read_predictions
from ecgxai.report.render import render_performance
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    i = snakemake.input
    written = render_performance(
        read_predictions(i.predictions),
        i.history,
        i.overall,
        i.per_label,
        i.comparison,
        i.thresholds,
        Path(snakemake.output.roc_pr_curves).parent,
        Path(snakemake.output.table1_overall).parent,
        calibration=i.calibration,
    )
    log.info("wrote %d files", len(written))
