"""The render stages: every figure and table of a run (rules render_performance, render_explanations), the
delineation examples (render_delineation) and the viewer page of a run's explained test records (viewer).

Thin orchestration over `ptbxl_xai.report.plots`, `ptbxl_xai.report.tables` and `ptbxl_xai.report.viewer`; file names are the
function names, so `plots.caption()` and the report captions find them. Nothing here needs more than the report
environment (envs/report.yaml): no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ptbxl_xai.config import EXPLANATION_FIGURES, EXPLANATION_TABLES, PERFORMANCE_FIGURES, PERFORMANCE_TABLES
from ptbxl_xai.data.parquet_io import lead_calibration, load_parquet_records, load_signals_mv, read_metadata
from ptbxl_xai.data.ptbxl import bundled_statements
from ptbxl_xai.evaluation.predictions import read_predictions
from ptbxl_xai.evaluation.thresholds import read_thresholds
from ptbxl_xai.report import plots, tables
from ptbxl_xai.report.render import in_space, read_attributions, signals_in_mv, viewer_records
from ptbxl_xai.report.viewer import method_flags_from_table, render_viewer
from ptbxl_xai.stages import stem_of


def _tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", float_precision="round_trip")  # exact values back


def _stems(outputs: Mapping[str, str], names) -> dict[str, Path]:
    """{name: path stem} of the declared outputs (figure .png / table .tsv; .pdf, .md, .tex are written beside)."""
    missing = [n for n in names if n not in outputs]
    if missing:
        raise KeyError(f"outputs lack {missing}; have {sorted(outputs)}")
    return {n: Path(outputs[n]).with_suffix("") for n in names}


def _check_declared(written, outputs: Mapping[str, str]) -> list[str]:
    undeclared = sorted({str(Path(p)) for p in written} - {str(Path(p)) for p in outputs.values()})
    if undeclared:
        raise ValueError(f"wrote files the rule does not declare: {undeclared}")
    return list(written)


def render_performance(
    *,
    predictions,
    history,
    overall,
    per_label,
    comparison,
    thresholds,
    calibration,
    outputs: Mapping[str, str],
) -> list[str]:
    """Figures and tables about how well a run classifies (its test records: fold 10, or out-of-fold under
    crossval), to the paths `outputs` names."""
    stem = _stems(outputs, PERFORMANCE_FIGURES + PERFORMANCE_TABLES)
    pred = read_predictions(predictions)
    per_label = _tsv(per_label)
    thr = read_thresholds(thresholds, pred["label_names"], test_fold=pred.get("test_fold"))
    out = plots.roc_pr_curves(pred, stem["roc_pr_curves"])
    out += plots.training_curves(_tsv(history), stem["training_curves"])
    out += plots.per_label_bars(per_label, stem["per_label_bars"])
    out += plots.error_analysis(pred, thr, stem["error_analysis"])
    out += plots.reliability_diagram(_tsv(calibration), per_label, stem["reliability_diagram"])
    out += tables.table1_overall(_tsv(overall), _tsv(comparison), stem["table1_overall"])
    out += tables.per_label_table(
        per_label, stem["per_label_table"], tables.label_descriptions(per_label["label"], bundled_statements())
    )
    return _check_declared(out, outputs)


def render_explanations(
    *,
    shap,
    lime,
    attention,
    correlations,
    correlation_summary,
    curves,
    faithfulness,
    data,
    folds,
    length_s: float,
    outputs: Mapping[str, str],
    beats=None,
    backgrounds=None,
) -> list[str]:
    """The paper's Figures 1-3 (time bins), the beat-aligned Figure 2 (wave features), faithfulness curves
    and the agreement, faithfulness and background tables, to `outputs`. beats: the delineation output (median
    beats); backgrounds: the background comparison's per-record rows."""
    stem = _stems(outputs, EXPLANATION_FIGURES + EXPLANATION_TABLES)
    attributions = read_attributions(shap, lime, attention)
    x, ids, meta = load_parquet_records(data, folds)
    rate, n_bins = meta["sampling_rate"], meta["filters"]["n_bins"]
    waves = in_space(attributions, "waves")
    beat_tables = {}
    if beats and len(waves):
        from ptbxl_xai.data.delineation import read_beats  # not stages.explain: the report env has no torch

        table = read_beats(beats, ecg_ids=[int(e) for e in waves["ecg_id"].unique()])
        beat_tables = {int(e): g.reset_index(drop=True) for e, g in table.groupby("ecg_id", sort=False)}
    on_waves = np.isin(ids, waves["ecg_id"].unique())
    x_mv, units = signals_in_mv(x[on_waves], ids[on_waves], data, folds) if on_waves.any() else (x[:0], "mV")
    signals = {int(e): s for e, s in zip(ids[on_waves], x_mv)}
    attributions = in_space(attributions)  # Figures 1-3 and the viewer live on time bins
    explained = np.isin(ids, attributions["ecg_id"].unique())
    labels = attributions["label"].unique()
    out = plots.fig1_attention_distribution(
        attributions,
        stem["fig1_attention_distribution"],
        rate,
        n_bins,
        length_s,
        tables.label_groups(labels, bundled_statements()),
    )
    out += plots.fig2_shap_heatmap(attributions, (x[explained], ids[explained]), stem["fig2_shap_heatmap"], rate)
    out += plots.fig3_shap_attention_alignment(
        attributions, in_space(_tsv(correlations)), stem["fig3_shap_attention_alignment"], rate, length_s=length_s
    )
    aucs = _tsv(faithfulness)
    out += plots.faithfulness_curves(pd.read_parquet(curves), aucs, stem["faithfulness_curves"])
    for method in plots.beats.BEAT_METHODS:
        name = f"beat_attribution_{method}"
        out += plots.beat_attribution(waves, signals, beat_tables, rate, method, stem[name], units=units)
    out += tables.correlation_table(_tsv(correlation_summary), stem["correlation_table"])
    out += tables.faithfulness_table(aucs, stem["faithfulness_table"])
    from ptbxl_xai.explain.backgrounds import background_summary

    per_record = pd.read_parquet(backgrounds) if backgrounds else pd.DataFrame()
    summary = background_summary(per_record) if len(per_record) else pd.DataFrame()
    out += tables.background_table(summary, stem["background_table"])
    return _check_declared(out, outputs)


def render_delineation(*, signals, beats, png, pdf=None, n_examples: int = 4) -> list[str]:
    """Figure of delineated example records of the preprocessed `signals` with their `beats` (the delineation
    folder; see plots.delineation_examples), signals in mV: `png`, with the PDF `pdf` beside it."""
    data_dir, delineation_dir, out_stem = signals, beats, stem_of(png, pdf=pdf)
    from ptbxl_xai.data.delineation import beat_files, read_beats, read_delineation_summary
    from ptbxl_xai.report.plots.delineation import pick_examples

    summary = read_delineation_summary(delineation_dir)
    ids = pick_examples(summary, n_examples)
    x, found, meta = load_signals_mv(data_dir, range(1, 11), ecg_ids=ids)
    order = [list(found).index(i) for i in ids]
    files = beat_files(delineation_dir)
    method = read_metadata(files[0]).get("method", "") if files else ""
    table = read_beats(delineation_dir, ecg_ids=ids) if files else pd.DataFrame(columns=["ecg_id"])
    return plots.delineation_examples(
        x[order], np.asarray(ids), table, summary, int(meta["sampling_rate"]), out_stem, method=method
    )


def _known_answer_flags(path, variant, features, background) -> dict:
    from ptbxl_xai.explain.checks.known_answer import known_answer_flags

    return known_answer_flags(_tsv(path), variant, features or "waves", background)


def viewer(
    *,
    predictions,
    thresholds,
    shap,
    lime,
    attention,
    data,
    viewer,
    folds,
    title: str,
    beats=None,
    sanity=None,
    context=None,
    features: str | None = None,
    counterfactuals=None,
    known_answer=None,
    known_answer_variant: str | None = None,
    background: str = "normal_template",
) -> Path:
    """The viewer page (one self-contained HTML file) for a run's explained test records.

    `context`: the run's context.json (evaluate rule), shown under the title (data, records, labels, split).

    In mV where the signals Parquet carries lead_scale/lead_offset, on the features each record was
    explained in. Optional inputs: `beats`, the delineation folder (wave bands, fiducials, median
    beats, wave features); `sanity`, a TSV of method flags (method, flag, note) from the sanity checks.
    `features` is the run's explain.features (waves | bins). `counterfactuals`: the JSON of rule
    counterfactuals' answers (ecg_id -> label -> answer), drawn on those records' median beats.
    `known_answer`: rule known_answer's localisation.tsv, whose rows for the model `known_answer_variant` (the
    run's architecture), the run's feature space and `background` flag each method (passed / caution / failed).
    """
    pred = read_predictions(predictions)
    attributions = read_attributions(shap, lime, attention)
    x, ids, meta = load_parquet_records(data, folds)
    keep = np.isin(ids, attributions["ecg_id"].unique())
    x, ids = x[keep], ids[keep]
    thr = read_thresholds(thresholds, pred["label_names"], test_fold=pred.get("test_fold"))
    units = "z-score" if meta["filters"].get("zscore", True) else "mV"
    calibration = lead_calibration(data, folds, ids)
    scale, offset = calibration if calibration is not None else (None, None)
    beat_table = None
    if beats is not None:
        from ptbxl_xai.data.delineation import read_beats  # the delineate stage's reader

        beat_table = read_beats(beats, ecg_ids=ids)
    records = viewer_records(
        pred,
        thr,
        attributions,
        x,
        ids,
        meta["sampling_rate"],
        meta["filters"]["n_bins"],
        units,
        lead_scale=scale,
        lead_offset=offset,
        beats=beat_table,
        feature_kind=features,
        method_flags=None if sanity is None else method_flags_from_table(_tsv(sanity)),
        counterfactuals=None if counterfactuals is None else json.loads(Path(counterfactuals).read_text("utf-8")),
        known_answer_flags=None
        if known_answer is None
        else _known_answer_flags(known_answer, known_answer_variant, features, background),  # fmt: skip
    )
    line = ""
    if context is not None:
        from ptbxl_xai.evaluation.context import context_sentence

        line = context_sentence(json.loads(Path(context).read_text(encoding="utf-8")))
    return render_viewer(records, viewer, title=title, context=line)
