"""The explain_record stage: a user's own ECG through the trained model, the explainers and a viewer page.

Shares its steps with the training data (ptbxl_xai.data.user_record conditions the record the same way) and with the
explain stage (`TrainedRun.explain`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ptbxl_xai.config import FilterSettings
from ptbxl_xai.data.conditioning import to_mv
from ptbxl_xai.data.ptbxl import bundled_statements
from ptbxl_xai.data.user_record import prepare_user_record_scaled
from ptbxl_xai.explain.select import labels_to_explain
from ptbxl_xai.explain.spaces.features import FIDUCIALS
from ptbxl_xai.model.training import predict
from ptbxl_xai.outputs import write_tsv
from ptbxl_xai.trained_run import TrainedRun

log = logging.getLogger(__name__)


def predictions_table(label_names, probs: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    """One row per label, most probable first: description, probability, threshold, predicted (0/1)."""
    from ptbxl_xai.report.tables import label_descriptions

    descriptions = label_descriptions(label_names, bundled_statements())
    return pd.DataFrame(
        {
            "label": list(label_names),
            "description": [descriptions.get(n, "") for n in label_names],
            "probability": probs,
            "threshold": thresholds,
            "predicted": (probs >= thresholds).astype(int),
        }
    ).sort_values("probability", ascending=False, kind="stable")


def _viewer_beats(x_mv: np.ndarray, rate: int, method: str) -> pd.DataFrame:
    """The record's beats for the viewer (wave bands, fiducials, median beat); none where it cannot be
    delineated, which the page then says."""
    from ptbxl_xai.data.delineation import DelineationError, delineate_record

    try:
        beats = delineate_record(x_mv, rate, method)
    except DelineationError as exc:
        log.info("not delineated (%s): the viewer shows no wave segments", exc)
        beats = np.empty((0, len(FIDUCIALS)), dtype=np.int32)
    return pd.DataFrame(beats, columns=list(FIDUCIALS)).assign(ecg_id=0)


def explain_record(
    *,
    record,
    weights,
    thresholds,
    data,
    predictions,
    attributions,
    viewer,
    filters: dict,
    explain: dict,
    name: str,
    template=None,
    delineation_method: str = "neurokit_prominence",
    sidecar=None,
    signals=None,
) -> pd.DataFrame:
    """Predict and explain the WFDB record `record` (a .hea path, its `signals` beside it); write the predictions
    table, the attributions (Parquet) and a viewer page. Returns the predictions table. template: the NORM template
    (.npz) that `background: normal_template` needs (a record without delineation gets its repeated normal cycle).
    sidecar: the weights' sidecar, which `TrainedRun` reads beside them."""
    from ptbxl_xai.report.render import viewer_records
    from ptbxl_xai.report.viewer import render_viewer

    run = TrainedRun(weights, thresholds, data, template=template, settings=FilterSettings(**filters))
    settings = run.settings
    x, lead_scale, lead_offset, notes = prepare_user_record_scaled(record, settings, run.lead_stats)
    names, thr = run.label_names, run.thresholds
    probs, _ = predict(run.model, x[None], device="cpu")
    labels = labels_to_explain(probs, thr, explain["top_k"])
    # delineated once: the wave features of the explanation and the viewer's bands share these beats
    beats = _viewer_beats(to_mv(x, lead_scale, lead_offset), settings.rate, delineation_method)
    expl = run.explain(x[None], labels, [0], explain, beats={0: beats} if len(beats) else None)

    table = predictions_table(names, probs[0], thr)
    write_tsv(table, predictions)
    expl.attributions.to_parquet(attributions, index=False)
    pred = {"ecg_id": np.array([0]), "prob": probs, "y_true": None, "label_names": names}
    records = viewer_records(
        pred,
        thr,
        expl.attributions,
        x[None],
        np.array([0]),
        settings.rate,
        settings.n_bins,
        lead_scale=lead_scale[None],
        lead_offset=lead_offset[None],
        beats=beats,
        notes=notes,
    )
    render_viewer(records, viewer, title=f"Your ECG {name}" + (f" ({'; '.join(notes)})" if notes else ""))
    log.info("%s: predicted %s", record, list(table.label[table.predicted == 1]))
    return table
