"""Rule viewer: the interactive explanation page for the explained test records."""

import pandas as pd

from ecgxai.evaluation.predictions import read_predictions
from ecgxai.report.render import read_attributions, render_run_viewer
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    i = snakemake.input
    # Optional inputs, where the rule declares them: the delineation's beat tables (waves, bands,
    # median beats) and the sanity checks' method flags (TSV: method, flag, note).
    beats = None
    if "beats" in i.keys():
        from ecgxai.data.delineation import read_beats

        beats = read_beats(i.beats)
    sanity = pd.read_csv(i.sanity, sep="\t") if "sanity" in i.keys() else None
    page = render_run_viewer(
        read_predictions(i.predictions),
        i.thresholds,
        read_attributions(i.shap, i.lime, i.attention),
        i.data,
        snakemake.params.folds,
        snakemake.output[0],
        title=f"ECG explanations: {snakemake.wildcards.run}",
        beats=beats,
        feature_kind=snakemake.params.get("features"),
        sanity=sanity,
    )
    log.info("viewer written to %s (%.1f MB)", page, page.stat().st_size / 1e6)
