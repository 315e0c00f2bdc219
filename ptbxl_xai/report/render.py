"""What the render stages (`ptbxl_xai.stages.render`) and `explain_record` share: attributions read back, signals in
mV, the viewer's record dicts; and every caption of the report.

The stages write files named after the plotting functions of `ptbxl_xai.report.plots` and `ptbxl_xai.report.tables`,
so `plots.caption()` and the report captions find them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ptbxl_xai.config import (  # noqa: F401  (re-exported)
    EXPLANATION_FIGURES,
    EXPLANATION_TABLES,
    PERFORMANCE_FIGURES,
    PERFORMANCE_TABLES,
)
from ptbxl_xai.data.parquet_io import part_files
from ptbxl_xai.data.ptbxl import LEADS, bundled_statements
from ptbxl_xai.explain.spaces.features import FIDUCIALS, FeatureSpace, bin_space, space_for_record, wave_space
from ptbxl_xai.report import plots, tables


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
    counterfactuals: dict | None = None,
    known_answer_flags: dict | None = None,
) -> list[dict]:
    """Viewer record dicts for the explained records (ptbxl_xai.report.viewer's contract).

    x [n, 12, T] is the model's input in `units`; lead_scale/lead_offset [n, 12] (from the signals
    Parquet) bring it back to mV for the page. `beats` is the delineation's beat table (ecg_id plus
    the fiducial columns; None where the run has no delineation): a record without rows in it was
    not delineated. `feature_kind` is the run's explain.features (waves | bins). `counterfactuals`:
    str(ecg_id) -> label -> answer (`TrainedRun.counterfactual_answer`) for the records that have them. `n_bins` is kept for
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
        if known_answer_flags:
            record["known_answer_flags"] = known_answer_flags
        if counterfactuals and str(ecg_id) in counterfactuals:
            record["counterfactuals"] = counterfactuals[str(ecg_id)]
        records.append(record)
    return records


def all_captions() -> dict[str, str]:
    """{report/<name>.rst: caption} of every figure and table the workflow puts in the report."""
    from ptbxl_xai.report import ablation

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


if __name__ == "__main__":  # the old form of `ecgxai captions [FOLDER]` (python -m ptbxl_xai.report.render report)
    import sys

    from ptbxl_xai.cli import main as cli_main

    raise SystemExit(cli_main(["captions", *sys.argv[1:]]))
