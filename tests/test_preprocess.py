"""Preprocessing: quarantine of every kind of bad record, Parquet contract, atomic outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import ecg_like, write_record

from ptbxl_xai import __version__
from ptbxl_xai.data.conditioning import FilterSettings, bin_means, filter_signals
from ptbxl_xai.data.parquet_io import load_fold_arrays, load_parquet_records, load_signals_mv, read_labels
from ptbxl_xai.data.preprocess import InputError, preprocess
from ptbxl_xai.data.ptbxl import LEADS, record_path


def run(root, out, **kw):
    settings = kw.pop("settings", FilterSettings(rate=100))
    return preprocess(root, out / "100hz", out / "labels.parquet", out / "quality.tsv", settings, progress=False, **kw)


def test_bad_records_are_quarantined_with_reason_and_the_run_goes_on(tiny_ptbxl, tmp_path):
    root, rng = tiny_ptbxl, np.random.default_rng(1)

    def base(i):
        return root / record_path(i, 100)

    base(2).with_suffix(".hea").unlink()  # missing header
    base(3).with_suffix(".dat").unlink()  # missing data
    base(4).with_suffix(".hea").write_text("this is not a WFDB header\n")  # unreadable header
    write_record(root, 5, 100, ecg_like(rng, 1000, 100, leads=11), names=LEADS[:11])  # 11 leads
    write_record(root, 6, 100, ecg_like(rng, 500, 100))  # 5 s only
    sig = ecg_like(rng, 1000, 100)
    sig[100:120, 7] = np.nan  # NaN in V2
    write_record(root, 7, 100, sig)
    sig = ecg_like(rng, 1000, 100)
    sig[:, 2] = 0.25  # flat lead III
    write_record(root, 8, 100, sig)
    write_record(root, 9, 100, ecg_like(rng, 1000, 100), fs=250)  # wrong sampling rate
    dat = base(10).with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:5000])  # truncated data
    db = pd.read_csv(root / "ptbxl_database.csv")
    db.loc[db.ecg_id == 11, "scp_codes"] = "NORM 100"  # unparseable labels
    extra = db.iloc[[0]].assign(ecg_id=99, filename_lr=record_path(99, 100))  # row without record
    pd.concat([db, extra]).to_csv(root / "ptbxl_database.csv", index=False)

    summary = run(root, tmp_path / "out")

    quality = pd.read_csv(tmp_path / "out" / "quality.tsv", sep="\t")
    reasons = dict(zip(quality.ecg_id, quality.reason))
    assert reasons[2] == "missing header file 00002_lr.hea"
    assert reasons[3] == "missing data file 00003_lr.dat"
    assert reasons[4].startswith("unreadable header 00004_lr.hea")
    assert reasons[5].startswith("wrong leads: 11 signals")
    assert reasons[6] == "too short: 500 samples, at least 1000 needed"
    assert reasons[7] == "NaN or infinite samples in lead(s) V2"
    assert reasons[8] == "flat lead(s) III"
    assert reasons[9] == "sampling rate 250 Hz, expected 100 Hz"
    assert reasons[10].startswith("truncated data file 00010_lr.dat")
    assert reasons[11].startswith("bad metadata row: scp_codes is not a dict literal")
    assert reasons[99] == "missing header file 00099_lr.hea"
    assert quality.loc[quality.ecg_id == 2, "record"].item() == "records100/00000/00002_lr"
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99}
    kinds = dict(zip(quality.ecg_id, quality.kind))
    assert kinds[2] == kinds[3] == kinds[99] == "missing file" and kinds[8] == "flat lead"

    x, ids, _ = load_parquet_records(tmp_path / "out" / "100hz", range(1, 11))
    assert ids.tolist() == [1] + list(range(12, 21))
    assert summary.kept.sum() == 10 and summary.quarantined.sum() == 11


def test_parquet_contract_and_loader(tiny_ptbxl, tmp_path):
    run(tiny_ptbxl, tmp_path / "out")
    data = tmp_path / "out" / "100hz"
    x, y, ids, names = load_fold_arrays(data, tmp_path / "out" / "labels.parquet", range(1, 9), "superdiagnostic")
    assert x.dtype == np.float32 and x.shape == (16, 12, 1000) and x.flags.c_contiguous
    assert ids.tolist() == list(range(1, 17))
    assert names == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert y[ids.tolist().index(4)].tolist() == [0, 0, 0, 1, 0]  # ecg 4: NORM (CODES[0])
    assert y[ids.tolist().index(7)].tolist() == [0, 1, 0, 0, 1]  # ecg 7: LVH + ISC_
    np.testing.assert_allclose(x.mean(axis=-1), 0, atol=1e-4)  # z-scored per lead
    np.testing.assert_allclose(x.std(axis=-1), 1, atol=1e-3)

    bins, bin_ids, meta = load_parquet_records(data, range(1, 9), kind="bins")
    assert bins.shape == (16, 12, 20) and (bin_ids == ids).all()
    np.testing.assert_allclose(bins, bin_means(x, 20), atol=1e-6)
    assert meta["sampling_rate"] == 100 and meta["leads"] == list(LEADS)
    assert meta["filters"]["low_hz"] == 0.5 and meta["ecgxai_version"] == __version__
    part = next((data / "fold=1").glob("signals-*.parquet"))
    assert json.loads(pq.read_schema(part).metadata[b"ecgxai"])["units"] == "z-score per lead"

    label_ids, y_all, all_names = read_labels(tmp_path / "out" / "labels.parquet", "all")
    assert label_ids.tolist() == list(range(1, 21)) and "AFIB" in all_names


def test_signals_read_back_in_mv(tiny_ptbxl, tmp_path):
    """lead_scale/lead_offset undo the z-score: the mV reader gives the filtered record itself."""
    import wfdb

    run(tiny_ptbxl, tmp_path / "out")
    data = tmp_path / "out" / "100hz"
    mv, ids, meta = load_signals_mv(data, range(1, 11))
    z, z_ids, _ = load_parquet_records(data, range(1, 11))
    assert (ids == z_ids).all() and mv.shape == z.shape == (20, 12, 1000) and meta["units"] == "mV"
    raw = wfdb.rdsamp(str(tiny_ptbxl / record_path(3, 100)))[0].T[None]
    expected = filter_signals(raw.astype(np.float32), FilterSettings(rate=100))[0]
    np.testing.assert_allclose(mv[ids.tolist().index(3)], expected, atol=2e-5)
    part = pq.read_table(next((data / "fold=2").glob("signals-*.parquet")))
    assert part.schema.field("lead_scale").type.list_size == 12 and part.column("lead_offset").type.list_size == 12
    only, only_ids, _ = load_signals_mv(data, range(1, 11), ecg_ids=[3, 17])
    assert only_ids.tolist() == [3, 17] and np.array_equal(only[0], mv[ids.tolist().index(3)])

    run(tiny_ptbxl, tmp_path / "plain", settings=FilterSettings(rate=100, zscore=False))
    scale = pq.read_table(next((tmp_path / "plain" / "100hz" / "fold=2").glob("signals-*.parquet")))["lead_scale"]
    assert set(scale.combine_chunks().flatten().to_numpy().tolist()) == {1.0}
    np.testing.assert_allclose(load_signals_mv(tmp_path / "plain" / "100hz", range(1, 11))[0], mv, atol=2e-5)


def test_rhythm_records_without_label_are_dropped_by_the_loader(tiny_ptbxl, tmp_path):
    run(tiny_ptbxl, tmp_path / "out")
    x, y, ids, names = load_fold_arrays(
        tmp_path / "out" / "100hz", tmp_path / "out" / "labels.parquet", range(1, 11), "form"
    )
    assert len(ids) == 0 or y.any(axis=1).all()


def test_parallel_workers_give_identical_parts(tiny_ptbxl, tmp_path):
    run(tiny_ptbxl, tmp_path / "a", part_size=3)
    run(tiny_ptbxl, tmp_path / "b", part_size=3, workers=2)
    xa, ia, _ = load_parquet_records(tmp_path / "a" / "100hz", range(1, 11))
    xb, ib, _ = load_parquet_records(tmp_path / "b" / "100hz", range(1, 11))
    assert (ia == ib).all() and np.array_equal(xa, xb)


def test_missing_table_fails_naming_it_and_keeps_previous_outputs(tiny_ptbxl, tmp_path):
    out = tmp_path / "out"
    run(tiny_ptbxl, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (tiny_ptbxl / "ptbxl_database.csv").unlink()
    with pytest.raises(InputError, match=r"ptbxl_database.csv: not found"):
        run(tiny_ptbxl, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob("out/*.tmp*"))


def test_database_without_needed_column_is_named(tiny_ptbxl, tmp_path):
    db = pd.read_csv(tiny_ptbxl / "ptbxl_database.csv").drop(columns=["strat_fold"])
    db.to_csv(tiny_ptbxl / "ptbxl_database.csv", index=False)
    with pytest.raises(InputError, match=r"ptbxl_database.csv: missing column\(s\) \['strat_fold'\]"):
        run(tiny_ptbxl, tmp_path / "out")


def test_zero_phase_bandpass_keeps_ecg_band_and_removes_drift():
    rate, t = 100, np.arange(1000) / 100
    wave = np.sin(2 * np.pi * 5 * t)
    drift = 2 * np.sin(2 * np.pi * 0.05 * t)
    out = filter_signals((wave + drift)[None, None], FilterSettings(rate=rate))[0, 0]
    core = slice(200, 800)  # away from the edges
    np.testing.assert_allclose(out[core], wave[core], atol=0.05)  # no phase shift, drift gone


def test_invalid_filter_settings_are_explained():
    with pytest.raises(ValueError, match="Nyquist"):
        FilterSettings(rate=100, high_hz=60)
    with pytest.raises(ValueError, match="equal bins"):
        FilterSettings(rate=100, n_bins=7)


def test_fast_header_parser_agrees_with_wfdb_and_falls_back_for_other_formats(tmp_path):
    import wfdb

    from ptbxl_xai.data.wfdb_io import read_header, read_wfdb_record

    rng = np.random.default_rng(3)
    sig = ecg_like(rng, 1000, 100)
    rel = write_record(tmp_path, 1, 100, sig)
    ours, ref = read_header(tmp_path / rel), wfdb.rdheader(str(tmp_path / rel))
    assert ours.simple and ours.sig_name == ref.sig_name and ours.fs == ref.fs
    assert ours.adc_gain == ref.adc_gain and ours.baseline == ref.baseline and ours.sig_len == ref.sig_len

    # format 212 is not parsed by us: wfdb reads it, with the same physical values
    path = tmp_path / "rec212"
    wfdb.wrsamp(
        "rec212",
        fs=100,
        units=["mV"] * 12,
        sig_name=list(LEADS),
        p_signal=sig,
        fmt=["212"] * 12,
        adc_gain=[200.0] * 12,
        baseline=[0] * 12,
        write_dir=str(tmp_path),
    )
    assert not read_header(path).simple
    x = read_wfdb_record(path, rate=100, min_samples=1000)
    np.testing.assert_allclose(x, wfdb.rdsamp(str(path))[0].T, atol=1e-6)
