"""The explain stages of one trained run: the NORM template (rule normal_template), the explanations of the
selected test records (explain), the background comparison (explain_backgrounds) and the methods' agreement
(correlate).

Each record is explained in the configured feature space (`explain.features`: waves where its beats
allow, else time bins, with the reason in the outputs' notes) and, with `explain.compare_features`,
in the other one as well, so faithfulness and agreement can be compared between the spaces.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ptbxl_xai.config import SPLITS
from ptbxl_xai.data.parquet_io import load_parquet_records, read_labels
from ptbxl_xai.evaluation.predictions import read_predictions
from ptbxl_xai.evaluation.thresholds import read_thresholds
from ptbxl_xai.explain.methods.explain_records import Explanations
from ptbxl_xai.explain.select import labels_to_explain, select_records
from ptbxl_xai.explain.spaces.features import NotDelineated, space_for_record
from ptbxl_xai.explain.spaces.template import NormalTemplate, build_normal_template
from ptbxl_xai.model.inference import model_functions
from ptbxl_xai.outputs import write_tsv
from ptbxl_xai.trained_run import TrainedRun

log = logging.getLogger(__name__)


def selected_records(run: TrainedRun, predictions, cfg: dict) -> dict:
    """The test records the explain config `cfg` selects from the run's test predictions: their signals, label
    indices to explain, ecg_ids and the selection table."""
    pred = read_predictions(predictions)
    names = pred["label_names"]
    if list(names) != run.label_names:
        raise ValueError(f"{predictions} predicts labels {list(names)}, the run {run.name} {run.label_names}")
    selection = select_records(
        pred["prob"],
        pred["y_true"],
        pred["ecg_id"],
        cfg["strategy"],
        cfg["records"],
        thresholds=run.thresholds,
        seed=cfg["seed"],
        label_names=names,
    )
    rows = selection["row"].to_numpy()
    labels = labels_to_explain(pred["prob"][rows], run.thresholds, cfg["top_k"])
    selection = selection.assign(explained_labels=[",".join(names[c] for c in ls) for ls in labels])
    x, ids = run.test_signals(pred["ecg_id"][rows])
    return dict(x=x, labels=labels, ids=ids, selection=selection)


def read_beats_by_record(beats_dir, ecg_ids=None) -> dict:
    """ecg_id -> its beat table, from the delineation output (`ptbxl_xai.data.delineation.read_beats`)."""
    from ptbxl_xai.data.delineation import read_beats  # the delineation stage's reader

    table = read_beats(beats_dir, ecg_ids=None if ecg_ids is None else [int(e) for e in ecg_ids])
    return {int(e): g.reset_index(drop=True) for e, g in table.groupby("ecg_id", sort=False)}


def space_table(meta: pd.DataFrame, requested: str) -> pd.DataFrame:
    """Which feature space(s) each record was explained in, and why (fallback, estimated boundaries)."""
    m = meta[meta["method"] == "shap"]
    out = m.groupby(["ecg_id", "feature_space"], sort=False)["notes"].first().reset_index()
    return out.assign(requested=requested)[["ecg_id", "requested", "feature_space", "notes"]]


def normal_template(
    *, data, labels, beats, template, label_set: str = "superdiagnostic", normal: str = "NORM"
) -> NormalTemplate:
    """The NORM template from the training folds (1-8), records labelled `normal` alone and their beats, written
    to `template` (.npz, atomically)."""
    x, ids, meta = load_parquet_records(data, SPLITS["train"])
    lab_ids, y, names = read_labels(labels, label_set)
    if normal not in names:
        raise ValueError(f"label set {label_set!r} has no {normal!r} label to build a normal template from")
    norm_ids = set(lab_ids[y[:, names.index(normal)] == 1].tolist())
    # NORM alone: a record that is also labelled with a finding is not a normal reference
    only = set(lab_ids[(y[:, names.index(normal)] == 1) & (y.sum(1) == 1)].tolist())
    keep = np.flatnonzero(np.isin(ids, list(only)))
    log.info(
        "normal template: %d training records labelled %s only (of %d with %s, %d training records)",
        len(keep),
        normal,
        len(norm_ids & set(ids.tolist())),
        normal,
        len(ids),
    )
    beat_tables = read_beats_by_record(beats, ids[keep])
    try:
        tpl = build_normal_template(x[keep], [beat_tables.get(int(e)) for e in ids[keep]], meta["sampling_rate"])
    except NotDelineated as exc:
        raise NotDelineated(f"{exc} (NORM-only training records in {data}, beats in {beats})") from None
    tpl.save(template)
    log.info(
        "normal template from %d NORM-only training records; median segment durations (samples at %d Hz): %s; "
        "occurrences: %s",
        tpl.n_records,
        tpl.rate,
        dict(zip(("P", "PR", "QRS", "ST", "T", "TP"), tpl.durations.round(1).tolist())),
        tpl.n_occurrences.tolist(),
    )
    return tpl


def explain(
    *,
    weights,
    thresholds,
    predictions,
    data,
    shap,
    lime,
    attention,
    meta,
    selection,
    faithfulness,
    curves,
    spaces=None,
    explain: dict,
    beats=None,
    template=None,
    sidecar=None,
    progress: bool = True,
) -> Explanations:
    """Explain the test records the explain config `explain` selects, and write the explain stage's files:
    attributions per method (Parquet: `shap`, `lime`, `attention`), run details (`meta`), the selection,
    faithfulness (`faithfulness`, `curves`) and (`spaces`) which feature space each record was explained in,
    and why. Returns the explanations.

    beats: the delineation output (beat tables); without it every record is explained on time bins.
    template: the NORM template (.npz or object) that `background: normal_template` needs. sidecar: the
    weights' sidecar, which `TrainedRun` reads beside them.
    """
    cfg = explain
    run = TrainedRun(weights, thresholds, data, template=template)
    s = selected_records(run, predictions, cfg)
    log.info(
        "explaining %d test records (%s), %d record-label pairs, features %s%s",
        len(s["ids"]),
        cfg["strategy"],
        sum(map(len, s["labels"])),
        cfg["features"],
        " and the other space" if cfg["compare_features"] else " (and SHAP on time bins for the paper's figures)",
    )
    beat_tables = read_beats_by_record(beats, s["ids"]) if beats else None
    expl = run.explain(
        s["x"], s["labels"], s["ids"].tolist(), cfg, beats=beat_tables, progress=progress, paper_bins=True
    )

    attrs = expl.attributions
    attrs[attrs.method.isin(["shap", "shap_gradient"])].to_parquet(shap, index=False)
    attrs[attrs.method == "lime"].to_parquet(lime, index=False)
    attrs[attrs.method == "attention"].to_parquet(attention, index=False)
    write_tsv(expl.meta, meta)
    write_tsv(s["selection"], selection)
    write_tsv(expl.aucs, faithfulness)
    expl.curves.to_parquet(curves, index=False)
    if spaces is not None:
        table = space_table(expl.meta, cfg["features"])
        write_tsv(table, spaces)
        log.info("records per feature space:\n%s", table.groupby("feature_space").ecg_id.nunique().to_string())
    shap_meta = expl.meta[expl.meta.method == "shap"]
    if len(shap_meta):
        log.info(
            "SHAP additivity error: max %.2e, median %.2e (|sum + base - f(x)|, probability units)",
            shap_meta.additivity_error.max(),
            shap_meta.additivity_error.median(),
        )
    if len(expl.aucs):
        log.info(
            "mean faithfulness AUC per feature space, method and curve:\n%s",
            expl.aucs.groupby(["feature_space", "kind", "method"]).auc.mean().unstack(1).to_string(),
        )
    return expl


def explain_backgrounds(
    *,
    weights,
    thresholds,
    predictions,
    data,
    per_record,
    explain: dict,
    backgrounds: dict,
    beats=None,
    template=None,
) -> pd.DataFrame:
    """The first `backgrounds['records']` records the explain config `explain` selects, explained once per
    background in `backgrounds['compare']` (SHAP and LIME, configured feature space); the rows of
    `backgrounds.compare_backgrounds`, written to `per_record` (Parquet) and summarised in the log."""
    from ptbxl_xai.explain.backgrounds import background_summary, compare_backgrounds

    cfg, bg_cfg = explain, backgrounds
    run = TrainedRun(weights, thresholds, data, template=template)
    s = selected_records(run, predictions, cfg)
    n = min(int(bg_cfg["records"]), len(s["ids"]))
    compare = [b for b in bg_cfg["compare"] if b != "normal_template" or run.template is not None]
    dropped = sorted(set(bg_cfg["compare"]) - set(compare))
    if dropped:
        log.warning("backgrounds %s left out: no normal template (needs delineation)", dropped)
    beat_tables = read_beats_by_record(beats, s["ids"][:n]) if beats else None
    T = s["x"].shape[-1]
    spaces = [
        [space_for_record(cfg["features"], T, run.n_bins, None if beat_tables is None else beat_tables.get(int(e)))]
        for e in s["ids"][:n]
    ]
    predict_proba, _ = model_functions(run.model)
    log.info("comparing backgrounds %s on %d records", compare, n)
    rows = compare_backgrounds(
        predict_proba,
        s["x"][:n],
        s["labels"][:n],
        run.label_names,
        s["ids"][:n],
        spaces,
        compare,
        cfg,
        template=run.template,
        lead_means=run.lead_means if "mean" in compare else None,
        blur_sigma_s=cfg["blur_sigma_s"],
        rate=run.rate,
    )
    tmp = Path(per_record).with_name(Path(per_record).name + ".tmp")
    rows.to_parquet(tmp, index=False)
    tmp.replace(per_record)
    if len(rows):
        log.info("per label, background and method:\n%s", background_summary(rows).to_string(index=False))
    return rows


def correlate(
    *, shap, lime, attention, per_record, summary, n_boot: int, seed: int, predictions=None, thresholds=None
) -> pd.DataFrame:
    """The correlate stage: agreement of SHAP, LIME and attention from the stored attribution files, per record
    and label (`per_record`) and summarised (`summary`); returns the summary.

    With the run's test `predictions` and `thresholds`, each record-label row is marked `predicted`
    (probability >= the label's threshold), and the summary's headline rows use those labels only.
    """
    from ptbxl_xai.explain.correlate import correlations_from_attributions, summarize

    attrs = pd.concat([pd.read_parquet(p) for p in (shap, lime, attention)], ignore_index=True)
    rows, table = correlations_from_attributions(attrs, n_boot=n_boot, seed=seed)
    if predictions is not None and thresholds is not None and len(rows):
        pred = read_predictions(predictions)
        names = pred["label_names"]
        thr = read_thresholds(thresholds, names, test_fold=pred.get("test_fold"))
        called = pred["prob"] >= thr
        where = {int(i): k for k, i in enumerate(pred["ecg_id"])}
        col = {n: j for j, n in enumerate(names)}
        rows["predicted"] = [
            bool(called[where[int(e)], col[str(lab)]]) for e, lab in zip(rows["ecg_id"], rows["label"])
        ]
        table = summarize(rows, n_boot=n_boot, seed=seed)
    write_tsv(rows, per_record)
    write_tsv(table, summary)
    key = table[(table.method_a == "shap") & (table.method_b == "attention")]
    log.info(
        "SHAP vs attention per feature space (paper, on time bins: Pearson 0.48, Spearman 0.60):\n%s",
        key.to_string(index=False),
    )
    return table
