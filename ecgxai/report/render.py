"""The render stage: every figure, table and the viewer page from a run's outputs.

Thin orchestration over `ecgxai.report.plots`, `ecgxai.report.tables` and `ecgxai.report.viewer`; file names are the
function names, so `plots.caption()` and the report captions find them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgxai.config import (  # noqa: F401  (re-exported)
    EXPLANATION_FIGURES,
    EXPLANATION_TABLES,
    PERFORMANCE_FIGURES,
    PERFORMANCE_TABLES,
)
from ecgxai.data.parquet_io import lead_calibration, load_parquet_records, load_signals_mv, part_files, read_metadata
from ecgxai.data.ptbxl import LEADS, bundled_statements
from ecgxai.evaluation.predictions import read_predictions
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.explain.spaces.features import FIDUCIALS, FeatureSpace, bin_space, space_for_record, wave_space
from ecgxai.report import plots, tables
from ecgxai.report.viewer import method_flags_from_table, render_viewer


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


def read_attributions(*paths) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def in_space(frame: pd.DataFrame, kind: str = "bins") -> pd.DataFrame:
    """Rows of one feature space (a frame without `feature_space` is all time bins)."""
    if "feature_space" not in frame.columns:
        return frame if kind == "bins" else frame.iloc[:0]
    return frame[frame["feature_space"] == kind].reset_index(drop=True)


def signals_in_mv(x: np.ndarray, ids: np.ndarray, data_dir, folds) -> tuple[np.ndarray, str]:
    """Records x [n, 12, T] (ecg_ids `ids`) in mV where the signal Parquet of `folds` carries
    lead_scale/lead_offset (mV = signal * scale + offset), else unchanged with units 'z-score'."""
    files = part_files(Path(data_dir), folds)
    if not files or "lead_scale" not in pq.read_schema(files[0]).names:
        return x, "z-score"
    t = pa.concat_tables([pq.read_table(f, columns=["ecg_id", "lead_scale", "lead_offset"]) for f in files])
    all_ids = t.column("ecg_id").to_numpy()
    order = np.argsort(all_ids, kind="stable")
    pos = order[np.searchsorted(all_ids[order], np.asarray(ids))]
    if not np.array_equal(all_ids[pos], np.asarray(ids)):
        raise ValueError(f"{data_dir}: lead scales missing for some of the {len(ids)} records")
    scale = np.stack(t.column("lead_scale").to_pylist())[pos].astype(np.float32)
    offset = np.stack(t.column("lead_offset").to_pylist())[pos].astype(np.float32)
    return x * scale[:, :, None] + offset[:, :, None], "mV"


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
        from ecgxai.data.delineation import read_beats  # not explain.pipeline: the report env has no torch

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
    from ecgxai.explain.backgrounds import background_summary

    per_record = pd.read_parquet(backgrounds) if backgrounds else pd.DataFrame()
    summary = background_summary(per_record) if len(per_record) else pd.DataFrame()
    out += tables.background_table(summary, stem["background_table"])
    return _check_declared(out, outputs)


def _record_space(rows: pd.DataFrame, T: int, beats, feature_kind: str | None) -> tuple[pd.DataFrame, FeatureSpace]:
    """The attribution rows of one record in the space the viewer shows, and that FeatureSpace.

    Waves where the record was explained on waves (and delineated), else time bins; a record the run
    meant to explain on waves but could not gets the fallback's reason in the space's notes, from the
    same `space_for_record` the explain stage used.
    """
    ecg_id = int(rows["ecg_id"].iloc[0])
    kinds = set(rows["feature_space"]) if "feature_space" in rows else {"bins"}
    if "waves" in kinds and feature_kind != "bins" and beats is not None and len(beats):
        space = wave_space(beats, T)
        return rows[rows["feature_space"] == "waves"], space
    if "feature_space" in rows:
        rows = rows[rows["feature_space"] == "bins"]
    if rows.empty:
        raise ValueError(
            f"ecg_id {ecg_id}: explained on waves only, but no beats were given to rebuild its wave segments"
        )
    n_bins = int(rows["bin"].max()) + 1
    if feature_kind == "waves":
        space = space_for_record("waves", T, n_bins, beats)
        if space.kind == "waves":  # delineated now, explained on bins then: say what is shown
            space = bin_space(T, n_bins)
            space = FeatureSpace(
                space.kind,
                space.segment_of_sample,
                space.segment_names,
                space.lead_names,
                ("explained on time bins only",),
            )
        return rows, space
    return rows, bin_space(T, n_bins)


def viewer_records(
    pred: dict,
    thresholds: np.ndarray,
    attributions: pd.DataFrame,
    x: np.ndarray,
    ids: np.ndarray,
    rate: int,
    n_bins: int,
    units: str = "z-score",
    *,
    lead_scale: np.ndarray | None = None,
    lead_offset: np.ndarray | None = None,
    beats: pd.DataFrame | None = None,
    feature_kind: str | None = None,
    method_flags: dict | None = None,
    notes: list[str] | None = None,
) -> list[dict]:
    """Viewer record dicts for the explained records (ecgxai.report.viewer's contract).

    x [n, 12, T] is the model's input in `units`; lead_scale/lead_offset [n, 12] (from the signals
    Parquet) bring it back to mV for the page. `beats` is the delineation's beat table (ecg_id plus
    the fiducial columns; None where the run has no delineation): a record without rows in it was
    not delineated. `feature_kind` is the run's explain.features (waves | bins). `n_bins` is kept for
    callers of the old signature; the bins come from the attribution rows.
    """
    names = list(pred["label_names"])
    descriptions = tables.label_descriptions(names, bundled_statements())
    row_of = {int(e): i for i, e in enumerate(pred["ecg_id"])}
    sig_of = {int(e): i for i, e in enumerate(ids)}
    beats_of = {} if beats is None else {int(e): g for e, g in beats.groupby("ecg_id", sort=False)}
    records = []
    for ecg_id, g in attributions.groupby("ecg_id", sort=False):
        ecg_id = int(ecg_id)
        r, s = row_of[ecg_id], sig_of[ecg_id]
        T = x.shape[-1]
        rec_beats = None if beats is None else beats_of.get(ecg_id, pd.DataFrame(columns=list(FIDUCIALS)))
        rows, space = _record_space(g, T, rec_beats, feature_kind)
        attr: dict = {}
        for (method, label), m in rows.groupby(["method", "label"], sort=False):
            if method not in ("shap", "lime", "attention"):
                continue
            grid = m.pivot(index="lead", columns="bin", values="value").reindex(index=list(LEADS))
            attr.setdefault(method, {})[str(label)] = grid.reindex(columns=range(space.n_segments)).to_numpy()
        record = {
            "ecg_id": ecg_id,
            "sampling_rate": int(rate),
            "leads": list(LEADS),
            "signal": x[s],
            "units": units,
            "label_names": names,
            "label_descriptions": {n: descriptions.get(n, "") for n in names},
            "probabilities": pred["prob"][r].astype(float).tolist(),
            "true": None if pred["y_true"] is None else pred["y_true"][r].astype(int).tolist(),
            "thresholds": np.clip(thresholds, 0, 1).astype(float).tolist(),
            "features": space,
            "attributions": attr,
        }
        if lead_scale is not None:
            record["lead_scale"], record["lead_offset"] = lead_scale[s], lead_offset[s]
        if rec_beats is not None:
            record["beats"] = rec_beats[list(FIDUCIALS)].to_numpy() if len(rec_beats) else []
        if method_flags:
            record["method_flags"] = method_flags
        if notes:
            record["notes"] = list(notes)
        records.append(record)
    return records


def render_run_viewer(
    *,
    predictions,
    thresholds,
    shap,
    lime,
    attention,
    data,
    folds,
    viewer,
    title: str,
    beats=None,
    sanity=None,
    feature_kind: str | None = None,
    notes: list[str] | None = None,
    context=None,
) -> Path:
    """The viewer page (one self-contained HTML file) for a run's explained test records.

    `context`: the run's context.json (evaluate rule), shown under the title (data, records, labels, split).

    In mV where the signals Parquet carries lead_scale/lead_offset, on the features each record was
    explained in. Optional inputs: `beats`, the delineation folder (wave bands, fiducials, median
    beats, wave features); `sanity`, a TSV of method flags (method, flag, note) from the sanity checks.
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
        from ecgxai.data.delineation import read_beats  # the delineate stage's reader

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
        feature_kind=feature_kind,
        method_flags=None if sanity is None else method_flags_from_table(_tsv(sanity)),
        notes=notes,
    )
    line = ""
    if context is not None:
        from ecgxai.evaluation.context import context_sentence

        line = context_sentence(json.loads(Path(context).read_text(encoding="utf-8")))
    return render_viewer(records, viewer, title=title, context=line)


def render_delineation(data_dir, delineation_dir, out_stem, n_examples: int = 4) -> list[str]:
    """Figure of delineated example records (see plots.delineation_examples), signals in mV."""
    from ecgxai.data.delineation import beat_files, read_beats, read_delineation_summary
    from ecgxai.report.plots.delineation import pick_examples

    summary = read_delineation_summary(delineation_dir)
    ids = pick_examples(summary, n_examples)
    x, found, meta = load_signals_mv(data_dir, range(1, 11), ecg_ids=ids)
    order = [list(found).index(i) for i in ids]
    files = beat_files(delineation_dir)
    method = read_metadata(files[0]).get("method", "") if files else ""
    beats = read_beats(delineation_dir, ecg_ids=ids) if files else pd.DataFrame(columns=["ecg_id"])
    return plots.delineation_examples(
        x[order], np.asarray(ids), beats, summary, int(meta["sampling_rate"]), out_stem, method=method
    )


def all_captions() -> dict[str, str]:
    """{report/<name>.rst: caption} of every figure and table the workflow puts in the report."""
    from ecgxai.report import ablation

    return {
        **plots.CAPTIONS,
        **tables.TABLE_CAPTIONS,
        "ablation": ablation.CAPTION,
        "ablation_per_label": ablation.PER_LABEL_CAPTION,
    }


def write_captions(folder) -> list[Path]:
    """One .rst caption per figure and table, for `snakemake --report` (report/ in the repository)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in all_captions().items():
        path = folder / f"{name}.rst"
        path.write_text(text + "\n")
        written.append(path)
    return written


if __name__ == "__main__":  # the old form of `ecgxai captions [FOLDER]` (python -m ecgxai.report.render report)
    import sys

    from ecgxai.cli import main as cli_main

    raise SystemExit(cli_main(["captions", *sys.argv[1:]]))
