"""Delineation: error against the synthetic ground truth, output contract, failed records, global boundaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ptbxl_xai.data.conditioning import FilterSettings
from ptbxl_xai.data.delineation import (
    BEAT_COLUMNS,
    FIDUCIALS,
    MIN_LEADS,
    SUMMARY_COLUMNS,
    combine_leads,
    delineate,
    error_table,
    match_to_truth,
    read_beats,
    read_delineation_summary,
)
from ptbxl_xai.data.parquet_io import load_signals_mv, write_part
from ptbxl_xai.data.preprocess import preprocess
from ptbxl_xai.data.synthetic import FIDUCIALS_CSV, generate_ptbxl

RATE = 100


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """30 synthetic records (all classes, AFIB included) preprocessed and delineated at 100 Hz."""
    root = tmp_path_factory.mktemp("delin")
    ptbxl = generate_ptbxl(root / "ptbxl", 30, seed=3, rates=(RATE,))
    data = root / "data" / f"{RATE}hz"
    preprocess(
        ptbxl,
        data,
        root / "data" / "labels.parquet",
        root / "data" / "quality.tsv",
        FilterSettings(),
        progress=False,
        part_size=2,
    )
    out = root / "delineation" / f"{RATE}hz"
    summary = delineate(data, out, workers=1, progress=False)
    truth = pd.read_csv(ptbxl / FIDUCIALS_CSV)
    return {"data": data, "out": out, "summary": summary, "truth": truth[truth["rate"] == RATE]}


def test_error_against_synthetic_ground_truth_is_within_bounds(synthetic):
    """At 100 Hz one sample is 10 ms, about the CSE tolerance of QRS onset (6.5 ms) and P onset
    (10.2 ms); the bounds below are 2 samples (median) and 5-8 samples (95th percentile)."""
    truth = synthetic["truth"]
    truth = truth[truth["r"].between(0.3 * RATE, 9.7 * RATE)]  # a QRS cut by the record's edge is not a beat to find
    errors = error_table(match_to_truth(read_beats(synthetic["out"]), truth, RATE)).set_index("fiducial")
    assert errors.loc["r", "found"] >= 0.9  # beats found, failed records included
    for name in ("p_on", "p_off", "qrs_on", "qrs_off"):
        assert errors.loc[name, "median_abs_ms"] <= 20, errors
        assert errors.loc[name, "p95_abs_ms"] <= 60, errors
    assert errors.loc["t_off", "median_abs_ms"] <= 30 and errors.loc["t_off", "p95_abs_ms"] <= 100, errors
    assert errors.loc["qrs_on", "found"] >= 0.9 and errors.loc["t_off", "found"] >= 0.9
    # AFIB records have no P wave: the truth says so, and few P waves are invented there
    assert (synthetic["truth"].groupby("ecg_id")["p_on"].max() == -1).any()


def test_output_contract(synthetic):
    out, summary = synthetic["out"], synthetic["summary"]
    parts = sorted(p.relative_to(out).as_posix() for p in out.glob("fold=*/beats-*.parquet"))
    signal_parts = sorted(
        p.relative_to(synthetic["data"]).as_posix().replace("signals-", "beats-")
        for p in synthetic["data"].glob("fold=*/signals-*.parquet")
    )
    assert parts == signal_parts  # mirrors the signal parts
    schema = pq.read_schema(next(out.glob("fold=*/beats-*.parquet")))
    assert schema.names == list(BEAT_COLUMNS)
    assert str(schema.field("ecg_id").type) == "int64"
    assert all(str(schema.field(c).type) == "int32" for c in ("beat", *FIDUCIALS))

    beats = read_beats(out)
    assert set(beats["ecg_id"]) == set(summary.loc[summary["status"] == "ok", "ecg_id"])
    for _, b in beats.groupby("ecg_id"):
        assert b["beat"].tolist() == list(range(len(b)))
        assert (np.diff(b["r"]) > 0).all()
    f = beats[list(FIDUCIALS)].to_numpy()
    assert ((f >= -1) & (f < 10 * RATE)).all()
    ok = beats[(beats[["qrs_on", "qrs_off", "p_on", "p_off", "t_on", "t_off"]] >= 0).all(axis=1)]
    assert len(ok) > 0.5 * len(beats)
    order = ok[["p_on", "p_off", "qrs_on", "r", "qrs_off", "t_on", "t_off"]].to_numpy()
    assert (np.diff(order[:, [0, 1]]) > 0).all() and (order[:, 1] <= order[:, 2]).all()
    assert (
        (order[:, 2] < order[:, 3]).all() and (order[:, 3] < order[:, 4]).all() and (order[:, 4] <= order[:, 5]).all()
    )

    some = sorted(beats["ecg_id"].unique())[:3:2]
    assert sorted(read_beats(out, ecg_ids=some)["ecg_id"].unique()) == some

    table = read_delineation_summary(out)
    assert list(table.columns) == list(SUMMARY_COLUMNS) and len(table) == 30
    assert table["ecg_id"].is_monotonic_increasing and set(table["status"]) <= {"ok", "failed"}
    good = table[table["status"] == "ok"]
    assert good["heart_rate_bpm"].between(35, 150).all()
    assert good["qrs_ms"].median() == pytest.approx(90, abs=25)  # the generator's QRS is 70-150 ms
    assert good["pr_ms"].median() == pytest.approx(165, abs=40)
    counts = beats.groupby("ecg_id").size()
    assert (good.set_index("ecg_id")["n_beats"] == counts.loc[good["ecg_id"]]).all()


def test_afib_has_the_larger_rr_irregularity(synthetic):
    db = pd.read_csv(synthetic["data"].parents[1] / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")
    table = read_delineation_summary(synthetic["out"]).set_index("ecg_id")
    afib = db["scp_codes"].str.contains("AFIB").reindex(table.index)
    assert table.loc[afib, "rr_irregularity"].median() > 3 * table.loc[~afib, "rr_irregularity"].median()


def test_a_record_that_cannot_be_delineated_is_failed_and_the_run_goes_on(synthetic, tmp_path):
    x, ids, meta = load_signals_mv(synthetic["data"], range(1, 11))
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((1, 12, x.shape[-1])).astype(np.float32) * 0.3
    flat = np.zeros((1, 12, x.shape[-1]), np.float32)
    batch = np.concatenate([x[:1], noise, flat, x[1:2]])
    data = tmp_path / "data"
    (data / "fold=1").mkdir(parents=True)
    write_part(data / "fold=1" / "signals-00000.parquet", [ids[0], 901, 902, ids[1]], [1.0] * 4, [1] * 4, batch, meta)
    summary = delineate(data, tmp_path / "out", workers=2, progress=False)
    status = dict(zip(summary["ecg_id"], summary["status"]))
    reasons = dict(zip(summary["ecg_id"], summary["reason"]))
    assert status == {ids[0]: "ok", 901: "failed", 902: "failed", ids[1]: "ok"}
    assert reasons[902] == "flat signal in every lead"
    assert "QRS" in reasons[901] or "delineated" in reasons[901]
    assert set(read_beats(tmp_path / "out")["ecg_id"]) == {ids[0], ids[1]}
    table = read_delineation_summary(tmp_path / "out")
    assert table.loc[table["ecg_id"] == 901, "n_beats"].item() == 0


def test_boundaries_are_global_over_leads():
    """Earliest onset and latest offset over the leads that agree; a lone outlier lead is ignored."""
    r = np.array([100, 200])
    per_lead = np.full((12, 2, len(FIDUCIALS)), np.nan)
    base = {"p_on": -16, "p_off": -6, "qrs_on": -4, "qrs_off": 5, "t_on": 12, "t_off": 30}
    for name, rel in base.items():
        per_lead[:, :, FIDUCIALS.index(name)] = r + rel
    k = FIDUCIALS.index
    per_lead[3, :, k("qrs_on")] -= 2  # lead 4 starts the QRS 20 ms earlier: the global onset
    per_lead[7, :, k("t_off")] += 3  # lead 8 ends the T wave 30 ms later: the global offset
    per_lead[5, :, k("qrs_off")] += 30  # lead 6 is 300 ms off: an outlier, ignored
    per_lead[:, 1, k("p_on")] = np.nan  # beat 2: P onset found in too few leads
    per_lead[: MIN_LEADS - 1, 1, k("p_on")] = 184
    g = combine_leads(per_lead, r, RATE, 1000)
    assert g[0].tolist() == [84, 94, 94, 100, 105, 112, 133]
    assert g[1, k("p_on")] == -1 and g[1, k("qrs_on")] == 194 and g[1, k("r")] == 200


def test_figure_of_delineated_examples(synthetic, tmp_path):
    from PIL import Image

    from ptbxl_xai.report import plots
    from ptbxl_xai.stages.render import render_delineation

    written = render_delineation(
        signals=synthetic["data"], beats=synthetic["out"], png=tmp_path / "delineation_examples.png"
    )
    png, pdf = map(Path, written)
    assert png.name == "delineation_examples.png" and pdf.read_bytes()[:5] == b"%PDF-"
    shown = plots.delineation.pick_examples(read_delineation_summary(synthetic["out"]))
    assert len(shown) == len(set(shown)) == 4
    w, h = plots.figsize("delineation_examples", len(shown))
    with Image.open(png) as im:
        assert im.size == (round(w * plots.DPI), round(h * plots.DPI))
    assert "mV" in plots.caption(png) and "CSE" in plots.caption(png)
