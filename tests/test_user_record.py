"""Explain your own ECG: a user's WFDB record through the training preprocessing, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ecg_like, write_record

from ecgxai.data.conditioning import FilterSettings
from ecgxai.data.ptbxl import LEADS, record_path
from ecgxai.data.user_record import UserRecordError, prepare_user_record
from ecgxai.report.viewer import render_viewer, validate_record


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_record_at_another_rate_is_resampled_with_a_note(tmp_path, rng):
    rel = write_record(tmp_path, 1, 500, ecg_like(rng, 5000, 500))
    x, notes = prepare_user_record(tmp_path / rel, FilterSettings(rate=100))
    assert x.shape == (12, 1000) and x.dtype == np.float32
    assert notes == ["resampled from 500 Hz to 100 Hz (the model was trained at 100 Hz)"]
    np.testing.assert_allclose(x.std(axis=-1), 1, atol=1e-3)


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
