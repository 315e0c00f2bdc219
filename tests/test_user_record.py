"""Explain your own ECG: a user's WFDB record through the training preprocessing, with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ecg_like, write_record

from ptbxl_xai.data.conditioning import FilterSettings, to_mv
from ptbxl_xai.data.ptbxl import LEADS, record_path
from ptbxl_xai.data.user_record import UserRecordError, prepare_user_record, prepare_user_record_scaled
from ptbxl_xai.report.viewer import render_viewer, validate_record


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_record_at_another_rate_is_resampled_with_a_note(tmp_path, rng):
    rel = write_record(tmp_path, 1, 500, ecg_like(rng, 5000, 500))
    x, notes = prepare_user_record(tmp_path / rel, FilterSettings(rate=100))
    assert x.shape == (12, 1000) and x.dtype == np.float32
    assert notes == ["resampled from 500 Hz to 100 Hz (the model was trained at 100 Hz)"]
    np.testing.assert_allclose(x.std(axis=-1), 1, atol=1e-3)


def test_scaled_record_maps_back_to_the_filtered_millivolts(tmp_path, rng):
    """The viewer draws the user's record in mV: lead_scale/lead_offset undo exactly the z-score."""
    rel = write_record(tmp_path, 1, 100, ecg_like(rng, 1000, 100))
    x, scale, offset, notes = prepare_user_record_scaled(tmp_path / rel, FilterSettings(rate=100))
    mv, _ = prepare_user_record(tmp_path / rel, FilterSettings(rate=100, zscore=False))
    assert scale.shape == offset.shape == (12,) and notes == []
    np.testing.assert_allclose(to_mv(x, scale, offset), mv, atol=1e-4)
    np.testing.assert_allclose(x, prepare_user_record(tmp_path / rel, FilterSettings(rate=100))[0])


def test_train_standard_runs_pass_a_user_record_through_the_stored_training_scaler(tmp_path, rng):
    """Under normalize: train_standard the model never saw per-record z-scores: a user's record must go
    through the scaler of folds 1-8 (normalization.json), keeping its absolute amplitude."""
    from ptbxl_xai.data.normalization import STATS_FILE, load_lead_stats, training_scaler

    rel = write_record(tmp_path, 1, 100, ecg_like(rng, 1000, 100))
    mean, std = rng.uniform(-0.1, 0.1, 12), rng.uniform(0.1, 0.4, 12)
    data = tmp_path / "data"
    data.mkdir()
    (data / STATS_FILE).write_text(json.dumps({"scheme": "train_standard", "mean": mean.tolist(), "std": std.tolist()}))
    settings = FilterSettings(rate=100, normalize="train_standard")
    stats = training_scaler(data, settings)
    assert stats == load_lead_stats(data) and training_scaler(data, FilterSettings(rate=100)) is None
    x, scale, offset, _ = prepare_user_record_scaled(tmp_path / rel, settings, stats)
    mv, _ = prepare_user_record(tmp_path / rel, FilterSettings(rate=100, zscore=False))
    np.testing.assert_allclose(x, (mv - mean[:, None]) / std[:, None], atol=1e-4)
    np.testing.assert_allclose(to_mv(x, scale, offset), mv, atol=1e-4)
    with pytest.raises(ValueError, match="normalization.json"):
        prepare_user_record_scaled(tmp_path / rel, settings)
    (data / STATS_FILE).write_text(json.dumps({"mean": [0.0] * 12, "std": [0.0] * 12}))
    with pytest.raises(ValueError, match=STATS_FILE):
        load_lead_stats(data)


def test_leads_are_matched_by_name_whatever_their_order(tmp_path, rng):
    sig = ecg_like(rng, 1000, 100)
    shuffled = list(reversed(LEADS))
    write_record(tmp_path, 1, 100, sig[:, ::-1], names=[n.lower() for n in shuffled])
    write_record(tmp_path, 2, 100, sig)
    a, _ = prepare_user_record(tmp_path / record_path(1, 100), FilterSettings(rate=100))
    b, _ = prepare_user_record(tmp_path / record_path(2, 100), FilterSettings(rate=100))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_wrong_lead_count_is_named(tmp_path, rng):
    rel = write_record(tmp_path, 1, 100, ecg_like(rng, 1000, 100, leads=3), names=["I", "II", "III"])
    with pytest.raises(UserRecordError, match=r"00001_lr.hea: 3 signals .* missing \['AVR'"):
        prepare_user_record(tmp_path / rel, FilterSettings(rate=100))


def test_unreadable_header_is_named(tmp_path):
    (tmp_path / "mine.hea").write_text("garbage header\n")
    with pytest.raises(UserRecordError, match=r"mine.hea: unreadable WFDB record"):
        prepare_user_record(tmp_path / "mine", FilterSettings(rate=100))
    with pytest.raises(UserRecordError, match=r"absent.hea: WFDB header not found"):
        prepare_user_record(tmp_path / "absent", FilterSettings(rate=100))


def test_too_short_record_is_refused(tmp_path, rng):
    rel = write_record(tmp_path, 1, 100, ecg_like(rng, 400, 100))
    with pytest.raises(UserRecordError, match=r"4.0 s long; at least 10 s needed"):
        prepare_user_record(tmp_path / rel, FilterSettings(rate=100))


def test_viewer_accepts_a_record_without_reference_labels(tmp_path):
    record = {
        "ecg_id": 0,
        "sampling_rate": 100,
        "leads": list(LEADS),
        "signal": np.zeros((12, 1000)).tolist(),
        "units": "z-score",
        "label_names": ["NORM", "MI"],
        "label_descriptions": {},
        "probabilities": [0.9, 0.1],
        "true": None,
        "thresholds": [0.5, 0.5],
        "n_bins": 20,
        "attributions": {"shap": {"NORM": np.zeros((12, 20)).tolist()}},
    }
    assert validate_record(record)["true"] is None
    page = render_viewer([record], tmp_path).read_text()
    assert '"true":null' in page.replace(" ", "")


# ---------------------------------------------------------------- edge cases (issue 12)
FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def _own_record(folder, name: str, rate: int = 100, seconds: float = 10.0, gain: str = "1000.0(0)/mV", fs=None):
    """A user record named `name` (dots allowed) from the real PTB-XL fixture 00001, tiled to `seconds`."""
    d = np.fromfile(FIXTURES / "records500/00000/00001_hr.dat", dtype="<i2").reshape(-1, 12)
    if rate != 500:
        d = d[:: 500 // rate]
    n = int(seconds * rate)
    d = np.resize(d, (n, 12))
    d.astype("<i2").tofile(folder / f"{name}.dat")
    lines = [f"{name} 12 {rate} {n}" if fs is None else f"{name} 12 {fs} {n}" if fs else f"{name} 12"]
    # the initial value and checksum fields as a WFDB writer states them: the data are checked against them
    checksum = (d.astype(np.int64).sum(axis=0) + 32768) % 65536 - 32768
    lines += [f"{name}.dat 16 {gain} 16 0 {d[0, j]} {checksum[j]} 0 {lead}" for j, lead in enumerate(LEADS)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / name


@pytest.mark.parametrize(
    "fs,reason",
    [
        ("0.4", r"sampling rate 0.4 Hz is not a plausible ECG rate \(50-20000 Hz\)"),
        ("1000000000", r"sampling rate 1e\+09 Hz is not a plausible ECG rate"),
        ("nan", r"sampling rate 'nan' is not a positive number"),
        ("-100", r"sampling rate '-100' is not a positive number"),
        ("1e9", r"sampling rate '1e9' is not a positive number"),
        ("", r"no sampling rate in the header \(wfdb would silently assume 250 Hz\)"),
    ],
)
def test_implausible_or_missing_sampling_rates_are_refused_naming_the_file(tmp_path, fs, reason):
    base = _own_record(tmp_path, "mine", fs=fs)
    with pytest.raises(UserRecordError, match=rf"{tmp_path}/mine.hea: .*{reason}"):
        prepare_user_record(base, FilterSettings(rate=100))


def test_a_record_name_with_dots_is_accepted(tmp_path):
    base = _own_record(tmp_path, "ecg.2024-01-01.v2")
    x, notes = prepare_user_record(tmp_path / "ecg.2024-01-01.v2.hea", FilterSettings(rate=100))
    assert x.shape == (12, 1000) and notes == []
    y, _ = prepare_user_record(base, FilterSettings(rate=100))
    np.testing.assert_array_equal(x, y)


def test_errors_name_the_dotted_file_itself(tmp_path):
    base = _own_record(tmp_path, "ecg.v2")
    (tmp_path / "ecg.v2.dat").unlink()
    with pytest.raises(UserRecordError, match=rf"{tmp_path}/ecg.v2.hea: missing data file ecg.v2.dat"):
        prepare_user_record(base, FilterSettings(rate=100))


def test_values_beyond_float32_after_scaling_are_refused_before_explaining(tmp_path):
    base = _own_record(tmp_path, "huge", gain="1e-36(0)/mV")  # finite in float64, not in float32
    with pytest.raises(UserRecordError, match=r"huge.hea: the conditioned signal is not finite in lead\(s\)"):
        prepare_user_record(base, FilterSettings(rate=100))


def test_a_long_record_is_read_in_its_window_with_the_same_result(tmp_path):
    """5 minutes at 500 Hz: the windowed read equals conditioning the whole record, then cropping."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    from ptbxl_xai.data.conditioning import condition
    from ptbxl_xai.data.user_record import read_user_record

    base = _own_record(tmp_path, "five_minutes", rate=500, seconds=300)
    settings = FilterSettings(rate=100)
    x, notes = prepare_user_record(base, settings)
    assert notes == [
        "300.0 s long: the center 10 s are used",
        "resampled from 500 Hz to 100 Hz (the model was trained at 100 Hz)",
    ]
    whole, fs, _ = read_user_record(base)
    ratio = Fraction(100, 500)
    ref = condition(
        resample_poly(whole, ratio.numerator, ratio.denominator, axis=-1)[None].astype(np.float32), settings
    )
    np.testing.assert_allclose(x, ref[0], atol=1e-4)  # the filter's edge transient is outside the window


def test_a_24_hour_500_hz_record_is_explained_within_1_gib(tmp_path):
    """A Holter-length record (1.04 GB of samples, stored sparse here) is prepared in a fresh
    process whose peak RSS stays below 1 GiB: only its centre window is read."""
    import subprocess
    import sys

    n, rate = 24 * 3600 * 500, 500
    name = "holter"
    ecg = np.fromfile(FIXTURES / "records500/00000/00001_hr.dat", dtype="<i2")  # 10 s, 12 leads interleaved
    # the true checksums: the whole gigabyte is checked against them, in chunks, within the same memory cap
    checksum = (5 * ecg.reshape(-1, 12).astype(np.int64).sum(axis=0) + 32768) % 65536 - 32768
    (tmp_path / f"{name}.hea").write_text(
        "\n".join(
            [f"{name} 12 {rate} {n}"]
            + [f"{name}.dat 16 1000(0)/mV 16 0 0 {checksum[j]} 0 {lead}" for j, lead in enumerate(LEADS)]
        )
        + "\n"
    )
    with open(tmp_path / f"{name}.dat", "wb") as f:
        f.truncate(n * 12 * 2)  # sparse: no gigabyte written to disk
        for k in range(-2, 3):  # real ECG around the centre, where the window is read
            f.seek(((n - 5000) // 2 + k * 5000) * 24)
            f.write(ecg.tobytes())
    code = (
        "import json, sys\n"
        "from ptbxl_xai.config import FilterSettings\n"
        "from ptbxl_xai.data.user_record import prepare_user_record\n"
        f"x, notes = prepare_user_record({str(tmp_path / name)!r}, FilterSettings(rate=100))\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (a big pytest)
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]\n"
        "print(json.dumps({'shape': list(x.shape), 'notes': notes, 'peak_mb': int(hwm) / 1024}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert result["shape"] == [12, 1000]
    assert result["notes"][0] == "86400.0 s long: the center 10 s are used"
    assert result["peak_mb"] < 1024, result


def test_explain_record_declares_the_data_file_and_the_sidecar(tmp_path):
    """A changed signal file or model sidecar reruns explain_record: both are inputs of the rule."""
    import yaml
    from test_workflow import SYNTHETIC, snakemake

    base = _own_record(tmp_path, "mine.v2")
    config = yaml.safe_load(SYNTHETIC.read_text())
    config["explain_record"] = {"records": {"mine": str(base)}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    workdir = tmp_path / "wd"
    workdir.mkdir()
    run = snakemake(
        workdir, "-n", "results/explain_record/mine/index.html", "--configfile", str(tmp_path / "config.yaml")
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    job = out[out.index("rule explain_record:") :]
    inputs = job[job.index("input:") : job.index("\n", job.index("input:"))]
    for needed in ("model.pt", "model.json", f"{base}.hea", f"{base}.dat"):
        assert needed in inputs, inputs
