"""Rule viewer: the interactive explanation page for the explained test records."""

from ecgxai.evaluation.predictions import read_predictions
from ecgxai.report.render import read_attributions, render_run_viewer
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    i = snakemake.input
    page = render_run_viewer(
        read_predictions(i.predictions),
        i.thresholds,
        read_attributions(i.shap, i.lime, i.attention),
        i.data,
        snakemake.params.folds,
        snakemake.output[0],
        title=f"ECG explanations: {snakemake.wildcards.run}",
    )
    log.info("viewer written to %s (%.1f MB)", page, page.stat().st_size / 1e6)
