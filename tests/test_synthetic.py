"""The synthetic PTB-XL generator: layout, formats, determinism, folds and learnable labels."""

from __future__ import annotations

import ast
import filecmp
import hashlib
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy.signal import butter, filtfilt, find_peaks
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ptbxl_xai.data.ptbxl import DATABASE_COLUMNS, LEADS, bundled_statements, record_path
from ptbxl_xai.data.synthetic import generate_ptbxl, main

LIKELIHOODS = {0.0, 15.0, 35.0, 50.0, 80.0, 100.0}


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    """The default data set (240 records, 100 and 500 Hz, seed 0)."""
    return generate_ptbxl(tmp_path_factory.mktemp("synthetic") / "ptbxl")


@pytest.fixture(scope="module")
def db(ds) -> pd.DataFrame:
    return pd.read_csv(ds / "ptbxl_database.csv", index_col="ecg_id")


@pytest.fixture(scope="module")
def codes(db) -> pd.Series:
    return db.scp_codes.apply(ast.literal_eval)


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------- database
def test_database_header_and_formats(ds, db):
    header = (ds / "ptbxl_database.csv").read_text().splitlines()[0]
    assert header.split(",") == list(DATABASE_COLUMNS)
    assert list(db.columns) == list(DATABASE_COLUMNS[1:])
    assert list(db.index) == list(range(1, 241))
    assert db.patient_id.dtype == float and db.age.dtype == float
    assert set(db.sex) <= {0, 1}
    assert db.validated_by_human.dtype == bool and db.second_opinion.dtype == bool
    assert db.strat_fold.dtype.kind == "i"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", d) for d in db.recording_date)
    assert db.recording_date.is_monotonic_increasing
    assert db.report.str.len().gt(5).all()
    assert list(db.filename_lr) == [record_path(i, 100) for i in db.index]
    assert list(db.filename_hr) == [record_path(i, 500) for i in db.index]
    # patient ids are written like PTB-XL's ("15709.0"), not as an index column
    first = (ds / "ptbxl_database.csv").read_text().splitlines()[1].split(",")
    assert first[0] == "1" and re.fullmatch(r"\d+\.0", first[1])


def test_statements_are_the_bundled_table(ds):
    assert filecmp.cmp(ds / "scp_statements.csv", bundled_statements(), shallow=False)


def test_scp_codes_are_real_statements_with_ptbxl_likelihoods(ds, codes):
    statements = pd.read_csv(ds / "scp_statements.csv", index_col=0)
    counts = Counter(c for d in codes for c in d)
    assert set(counts) <= set(statements.index)
    assert all(v in LIKELIHOODS for d in codes for v in d.values())
    assert all(isinstance(d, dict) and d for d in codes)
    # all five diagnostic superclasses occur; NORM is the largest, every code >= 5 times
    diag = statements.diagnostic_class.dropna()
    assert {diag[c] for c in counts if c in diag} == {"NORM", "MI", "STTC", "CD", "HYP"}
    assert max((c for c in counts if c in diag), key=counts.get) == "NORM"
    assert min(counts.values()) >= 5
    # every record has exactly one rhythm statement; some carry two diagnostic statements
    rhythm = set(statements.index[statements.rhythm == 1.0])
    assert all(sum(c in rhythm for c in d) == 1 for d in codes)
    assert sum(sum(c in diag for c in d) >= 2 for d in codes) >= 10


def test_patients_stay_in_one_fold_and_folds_are_balanced(db):
    assert (db.groupby("patient_id").strat_fold.nunique() == 1).all()
    per_patient = db.patient_id.value_counts()
    assert per_patient.min() >= 1 and per_patient.max() <= 3 and (per_patient > 1).any()
    sizes = db.strat_fold.value_counts()
    assert sorted(sizes.index) == list(range(1, 11))
    assert sizes.min() >= 0.08 * len(db)
    assert db.loc[db.strat_fold >= 9, "validated_by_human"].all()


# ----------------------------------------------------------------------------- records
@pytest.mark.parametrize("rate,length", [(100, 1000), (500, 5000)])
def test_records_read_back_with_wfdb(ds, db, rate, length):
    for ecg_id in (1, 2, 117, 240):
        path = str(ds / record_path(ecg_id, rate))
        h = wfdb.rdheader(path)
        assert (h.fs, h.sig_len, h.n_sig) == (rate, length, 12)
        assert h.sig_name == list(LEADS) and h.units == ["mV"] * 12
        assert h.fmt == ["16"] * 12 and h.adc_gain == [1000.0] * 12 and h.baseline == [0] * 12
        x, fields = wfdb.rdsamp(path)
        assert x.shape == (length, 12) and np.isfinite(x).all()
        assert 0.05 < np.abs(x).max() < 10.0  # millivolts, not volts or microvolts


def test_record_files_are_byte_identical_to_wfdb_wrsamp(ds, tmp_path):
    for rate in (100, 500):
        rel = Path(record_path(7, rate))
        rec = wfdb.rdrecord(str(ds / rel), physical=False)
        wfdb.wrsamp(
            rel.name,
            fs=rate,
            units=["mV"] * 12,
            sig_name=list(LEADS),
            d_signal=rec.d_signal.astype(np.int64),
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            write_dir=str(tmp_path),
        )
        for ext in (".hea", ".dat"):
            assert filecmp.cmp(tmp_path / (rel.name + ext), ds / (str(rel) + ext), shallow=False)


def test_limb_leads_obey_einthoven_and_goldberger(ds):
    x, _ = wfdb.rdsamp(str(ds / record_path(5, 500)))
    i, ii, iii, avr, avl, avf = x[:, :6].T
    tol = 0.0021  # three roundings to 1 uV
    assert np.abs(iii - (ii - i)).max() <= tol
    assert np.abs(avr + (i + ii) / 2).max() <= tol
    assert np.abs(avl - (i - ii / 2)).max() <= tol
    assert np.abs(avf - (ii - i / 2)).max() <= tol


def test_100hz_record_is_the_decimated_500hz_record(ds):
    b100 = butter(4, 25, fs=100)
    b500 = butter(4, 25, fs=500)
    for ecg_id in (3, 50, 200):
        lo, _ = wfdb.rdsamp(str(ds / record_path(ecg_id, 100)))
        hi, _ = wfdb.rdsamp(str(ds / record_path(ecg_id, 500)))
        lo_f = filtfilt(*b100, lo, axis=0)
        hi_f = filtfilt(*b500, hi, axis=0)[::5]
        core = slice(50, -50)  # ignore filter edge effects
        err = np.abs(lo_f[core] - hi_f[core])
        assert np.median(err) < 0.01 and err.max() < 0.1
        for j in range(12):
            assert np.corrcoef(lo_f[core, j], hi_f[core, j])[0, 1] > 0.99


# ----------------------------------------------------------------------------- determinism, API
def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _tree_digest(generate_ptbxl(tmp_path / "a", 30, seed=7))
    b = _tree_digest(generate_ptbxl(tmp_path / "b", 30, seed=7))
    c = _tree_digest(generate_ptbxl(tmp_path / "c", 30, seed=8))
    assert len(a) == 3 + 30 * 2 * 2  # csvs (database, statements, fiducials) + (hea, dat) x 2 rates
    assert a == b
    assert a.keys() == c.keys()
    assert a["ptbxl_database.csv"] != c["ptbxl_database.csv"]
    assert a["records500/00000/00001_hr.dat"] != c["records500/00000/00001_hr.dat"]


def test_cli_single_rate_and_patient_sizes(tmp_path):
    out = tmp_path / "cli"
    assert (
        main([str(out), "--n-records", "25", "--seed", "3", "--rates", "100", "--records-per-patient", "2", "2"]) == 0
    )
    db = pd.read_csv(out / "ptbxl_database.csv", index_col="ecg_id")
    assert len(db) == 25 and (out / "records100").is_dir() and not (out / "records500").exists()
    assert db.patient_id.value_counts().max() == 2
    assert (db.groupby("patient_id").strat_fold.nunique() == 1).all()


@pytest.mark.parametrize("kwargs", [{"n_records": 0}, {"rates": (250,)}, {"records_per_patient": (3, 1)}])
def test_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_ptbxl(tmp_path, **kwargs)


# ----------------------------------------------------------------------------- learnability
def _rhythm_features(x: np.ndarray, fs: int) -> list[float]:
    """R peaks from the 5-25 Hz energy of all leads -> rate, RR irregularity, V5 QRS energy."""
    b, a = butter(2, [5, 25], btype="band", fs=fs)
    y = filtfilt(b, a, x, axis=0)
    energy = np.convolve((y**2).sum(axis=1), np.ones(5) / 5, mode="same")
    peaks, _ = find_peaks(energy, distance=int(0.28 * fs), height=0.25 * np.percentile(energy, 99))
    rr = np.diff(peaks) / fs
    med = np.median(rr)
    return [
        60.0 / med,  # heart rate
        np.median(np.abs(np.diff(rr))) / med,  # successive RR differences (robust to a miss)
        np.std(rr) / np.mean(rr),
        float(np.log(np.mean(y[:, LEADS.index("V5")] ** 2))),
    ]


def _auc(features: np.ndarray, y: np.ndarray) -> float:
    xtr, xte, ytr, yte = train_test_split(features, y, test_size=0.5, stratify=y, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(xtr, ytr)
    return roc_auc_score(yte, model.predict_proba(xte)[:, 1])


def test_rhythm_labels_are_learnable_from_simple_features(ds, db, codes):
    feats = np.array([_rhythm_features(wfdb.rdsamp(str(ds / f))[0], 100) for f in db.filename_lr])
    has = lambda code: codes.apply(lambda d: code in d).to_numpy()  # noqa: E731
    norm_sr = has("NORM") & has("SR")

    assert _auc(feats, has("AFIB")) > 0.9
    for code in ("SBRAD", "STACH"):
        keep = norm_sr | has(code)
        assert _auc(feats[keep], has(code)[keep]) > 0.9
    # QRS voltage in V5 tells LVH from NORM
    keep = norm_sr | has("LVH")
    assert _auc(feats[keep][:, 3:], has("LVH")[keep]) > 0.9


def test_true_fiducials_of_every_beat(ds, codes):
    """fiducials.csv: every beat's boundaries at both rates, in order, physiological, no P in AFIB."""
    from ptbxl_xai.data.synthetic import FIDUCIALS, FIDUCIALS_CSV

    truth = pd.read_csv(ds / FIDUCIALS_CSV)
    assert list(truth.columns) == ["ecg_id", "rate", "beat", *FIDUCIALS]
    assert set(truth["ecg_id"]) == set(codes.index) and set(truth["rate"]) == {100, 500}
    hi, lo = truth[truth.rate == 500].set_index(["ecg_id", "beat"]), truth[truth.rate == 100]
    for ecg_id, beats in lo.groupby("ecg_id"):  # one beat, one time, at both rates
        r_hi = hi.loc[ecg_id, "r"].to_numpy() / 5
        assert np.abs(beats["r"].to_numpy()[:, None] - r_hi[None, :]).min(axis=1).max() <= 1.0  # last sample: clipped
    inside = hi[(hi[list(FIDUCIALS)] >= 0).all(axis=1)]
    steps = np.diff(inside[list(FIDUCIALS)].to_numpy(), axis=1)
    assert (np.delete(steps, 1, axis=1) > 0).all()
    assert (steps[:, 1] >= -10).all()  # P may end where (up to 20 ms after) a wide QRS or infarct Q begins
    ms = 1000 / 500
    assert ((inside.qrs_off - inside.qrs_on) * ms).between(60, 180).all()
    assert ((inside.qrs_on - inside.p_on) * ms).between(100, 340).all()
    assert ((inside.t_off - inside.qrs_on) * ms).between(280, 560).all()
    afib = codes.apply(lambda c: "AFIB" in c)
    assert (hi.loc[afib[afib].index, "p_on"] == -1).all()
    assert (hi.loc[afib[~afib].index, "p_on"] >= 0).mean() > 0.9
    # the 500 Hz signal really peaks where the truth puts the QRS (lead with the largest R)
    rec = wfdb.rdsamp(str(ds / record_path(1, 500)))[0]
    r = hi.loc[1, "r"].to_numpy()
    lead = np.abs(rec).max(axis=0).argmax()
    win = [np.abs(rec[max(0, k - 50) : k + 50, lead]).argmax() + max(0, k - 50) for k in r[r >= 0]]
    assert np.median(np.abs(np.array(win) - r[r >= 0])) <= 10  # within 20 ms
