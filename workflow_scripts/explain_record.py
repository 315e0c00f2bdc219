"""Rule explain_record: predictions, explanations and a viewer page for a user's own ECG."""

import numpy as np
import pandas as pd
import torch

from ecgxai.data.conditioning import FilterSettings
from ecgxai.data.ptbxl import bundled_statements
from ecgxai.data.user_record import prepare_user_record
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.explain.pipeline import explain_signals
from ecgxai.explain.select import labels_to_explain
from ecgxai.explain.template import NormalTemplate
from ecgxai.model.checkpoint import load_checkpoint
from ecgxai.model.training import predict
from ecgxai.report.render import viewer_records
from ecgxai.report.tables import label_descriptions
from ecgxai.report.viewer import render_viewer
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    settings = FilterSettings(**snakemake.params.filters)
    header = snakemake.input.record
    x, notes = prepare_user_record(header, settings)
    model, meta = load_checkpoint(snakemake.input.weights)
    names = meta["label_names"]
    thresholds = read_thresholds(snakemake.input.thresholds, names)
    probs, _ = predict(model, x[None], device="cpu")
    cfg = snakemake.params.explain
    labels = labels_to_explain(probs, thresholds, cfg["top_k"])
    template = NormalTemplate.load(snakemake.input.template) if "template" in snakemake.input.keys() else None
    expl = explain_signals(
        model,
        x[None],
        labels,
        names,
        [0],
        snakemake.input.data,
        cfg,
        n_bins=settings.n_bins,
        rate=settings.rate,
        template=template,
    )

    descriptions = label_descriptions(names, bundled_statements())
    pd.DataFrame(
        {
            "label": names,
            "description": [descriptions.get(n, "") for n in names],
            "probability": probs[0],
            "threshold": thresholds,
            "predicted": (probs[0] >= thresholds).astype(int),
        }
    ).sort_values("probability", ascending=False).to_csv(snakemake.output.predictions, sep="\t", index=False)
    expl.attributions.to_parquet(snakemake.output.attributions, index=False)
    pred = {"ecg_id": np.array([0]), "prob": probs, "y_true": None, "label_names": names}
    records = viewer_records(
        pred, thresholds, expl.attributions, x[None], np.array([0]), settings.rate, settings.n_bins
    )
    title = f"Your ECG {snakemake.wildcards.name}" + (f" ({'; '.join(notes)})" if notes else "")
    render_viewer(records, snakemake.output.viewer, title=title)
    log.info("%s: predicted %s", header, [n for n, p, t in zip(names, probs[0], thresholds) if p >= t])
