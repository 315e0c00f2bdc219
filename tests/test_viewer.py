"""The explanation viewer: Python contract/rendering, and the page itself in a real headless Chromium.

Browser tests need the Debian `chromium` package (/usr/bin/chromium) and the `playwright` Python
package (its driver only; browsers are never downloaded). Screenshots of every state go to
tests/artifacts/viewer/ (ignored by git through a .gitignore the tests write there).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptbxl_xai.explain.spaces.features import FIDUCIALS, SEGMENTS, wave_space
from ptbxl_xai.explain.spaces.median_beat import median_beat
from ptbxl_xai.report.viewer import METHODS, method_flags_from_table, render_viewer, validate_record, viewer_html

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "viewer"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
LABELS = ["NORM", "MI", "STTC", "CD", "HYP"]
DESCRIPTIONS = {
    "NORM": "Normal ECG",
    "MI": "Myocardial infarction",
    "STTC": "ST/T change",
    "CD": "Conduction disturbance",
    # Markup in a description must stay text and must not end the data <script> early.
    "HYP": "Hypertrophy </script><script>window.__pwned=1</script> & <!-- not a comment",
}
FS, SECONDS, N_BINS = 100, 10, 10
HOT_VALUE = {"shap": 1.0, "lime": -1.0, "attention": 1.0}  # lime's hot bin is negative: blue


# ------------------------------------------------------------------------------------------------
# synthetic records
# ------------------------------------------------------------------------------------------------


def fake_ecg(seed: int) -> np.ndarray:
    """[12, T] mV: P wave, QRS spike and T wave every 0.8 s, lead-specific gain/sign, small noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(FS * SECONDS) / FS
    phase = t % 0.8
    beat = (
        0.12 * np.exp(-((phase - 0.12) ** 2) / (2 * 0.02**2))
        + 1.0 * np.exp(-((phase - 0.30) ** 2) / (2 * 0.012**2))
        - 0.15 * np.exp(-((phase - 0.34) ** 2) / (2 * 0.01**2))
        + 0.25 * np.exp(-((phase - 0.55) ** 2) / (2 * 0.04**2))
    )
    gains = rng.uniform(0.4, 1.1, 12) * np.where(np.arange(12) == 3, -1, 1)  # aVR is inverted
    return gains[:, None] * beat[None, :] + 0.01 * rng.standard_normal((12, t.size))


def hot_spot(ecg_id: int, label: str, method: str) -> tuple[int, int]:
    """(lead index, bin) of the one large attribution of (record, label, method)."""
    li, mi = LABELS.index(label), METHODS.index(method)
    return (ecg_id + 3 * li + 5 * mi) % 12, (ecg_id + 2 * li + 3 * mi) % N_BINS


def make_record(ecg_id: int, units: str = "mV", methods=METHODS) -> dict:
    rng = np.random.default_rng(ecg_id)
    signal = fake_ecg(ecg_id)
    if units != "mV":
        signal = (signal - signal.mean(axis=1, keepdims=True)) / signal.std(axis=1, keepdims=True)
    attributions = {}
    for method in methods:
        attributions[method] = {}
        for label in LABELS:
            if method == "attention":
                values = rng.uniform(0.0, 0.05, (12, N_BINS))
            else:
                values = rng.normal(0.0, 0.02, (12, N_BINS))
            lead, b = hot_spot(ecg_id, label, method)
            values[lead, b] = HOT_VALUE[method]
            attributions[method][label] = values.tolist()
    probabilities = rng.uniform(0.02, 0.98, len(LABELS))
    return {
        "ecg_id": ecg_id,
        "sampling_rate": FS,
        "leads": list(LEADS),
        "signal": signal.tolist(),
        "units": units,
        "label_names": list(LABELS),
        "label_descriptions": dict(DESCRIPTIONS),
        "probabilities": probabilities.tolist(),
        # truth chosen so every record has a false positive and a false negative
        "true": [int(p < 0.5) if i < 2 else int(p >= 0.5) for i, p in enumerate(probabilities)],
        "thresholds": [0.5] * len(LABELS),
        "n_bins": N_BINS,
        "attributions": attributions,
    }


# Fiducials of fake_ecg's beat (period 80 samples): P 0.08-0.16 s, QRS 0.26-0.36 s (R 0.30), T 0.46-0.64 s.
BEAT_FIDUCIALS = (8, 16, 26, 30, 36, 46, 64)
R_MV = 1.5  # R amplitude of lead II in the calibrated record
OFFSET_MV = 0.5  # lead_offset of aVL in the calibrated record: its baseline sits 5 mm up
HOT_FEATURE = ("V2", "QRS")  # the one large SHAP attribution of the wave record


def fake_beats() -> np.ndarray:
    """fake_ecg's beats; the last one runs past the record's end, so its T is not found (-1)."""
    beats = np.array([[80 * k + f for f in BEAT_FIDUCIALS] for k in range(13)])
    beats[beats >= FS * SECONDS] = -1
    return beats


def wave_record(ecg_id: int = 404) -> dict:
    """A delineated, calibrated record explained on wave features: the signal is z-scores (what the
    model saw) with lead_scale/lead_offset back to mV; lead II's R is exactly R_MV."""
    t = np.arange(FS * SECONDS) / FS
    phase = t % 0.8
    beat = (
        0.12 * np.exp(-((phase - 0.12) ** 2) / (2 * 0.02**2))
        + np.exp(-((phase - 0.30) ** 2) / (2 * 0.012**2))
        + 0.25 * np.exp(-((phase - 0.55) ** 2) / (2 * 0.04**2))
    )
    gains = np.linspace(0.5, 1.2, 12)
    gains[1] = R_MV / beat.max()
    mv = gains[:, None] * beat[None, :]
    offset = np.zeros(12)
    offset[4] = OFFSET_MV
    mv += offset[:, None]
    scale = np.linspace(0.3, 0.9, 12)  # mV per z unit: anything but 1, so z drawn as mV would show
    record = make_record(ecg_id)
    del record["n_bins"]
    beats = fake_beats()
    space = wave_space(pd.DataFrame(beats, columns=list(FIDUCIALS)), FS * SECONDS)
    rng = np.random.default_rng(ecg_id)
    attributions = {}
    for method in METHODS:
        attributions[method] = {}
        for label in LABELS:
            values = rng.uniform(-0.01, 0.01, (12, len(SEGMENTS)))
            values[LEADS.index(HOT_FEATURE[0]), SEGMENTS.index(HOT_FEATURE[1])] = 1.0
            attributions[method][label] = values
    record.update(
        signal=(mv - offset[:, None]) / scale[:, None],
        units="z-score",
        lead_scale=scale,
        lead_offset=offset,
        features=space,
        beats=beats,
        attributions=attributions,
        method_flags={
            "shap": "passed",
            "lime": "failed: Spearman 0.91 with the randomised model",
            "attention": "caution: |attention| keeps 0.62 after randomisation",
        },
        notes=["synthetic test record"],
    )
    return record


def fallback_record(ecg_id: int = 505) -> dict:
    """A record whose delineation failed: its explanations fell back to time bins, and it says so."""
    record = make_record(ecg_id)
    n_bins = record.pop("n_bins")
    edges = np.arange(n_bins + 1) * FS * SECONDS // n_bins
    record["features"] = {
        "kind": "bins",
        "segment_names": [f"bin{b:02d}" for b in range(n_bins)],
        "runs": [[int(edges[b]), int(edges[b + 1]), b] for b in range(n_bins)],
        "notes": ["fell back to 10 time bins per lead: no beat with a valid QRS onset and offset among 3 beats"],
    }
    record["beats"] = []
    return record


RECORDS = [make_record(101), make_record(202, units="z-score"), make_record(303, methods=("shap", "attention"))]
WAVE_RECORDS = [wave_record(), fallback_record()]


def embedded_json(html_text: str):
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', html_text, re.S)
    assert match, "no embedded data script"
    return json.loads(match.group(1))


# ------------------------------------------------------------------------------------------------
# Python side
# ------------------------------------------------------------------------------------------------


def _breaks(mutate):
    record = copy.deepcopy(RECORDS[0])
    mutate(record)
    return record


BAD_RECORDS = {
    "ecg_id": lambda r: r.update(ecg_id="101"),
    "sampling_rate": lambda r: r.update(sampling_rate=0),
    "leads": lambda r: r.update(leads=LEADS[:11]),
    "signal": lambda r: r["signal"].pop(),
    "units": lambda r: r.update(units=""),
    "label_names": lambda r: r.update(label_names=["NORM", "NORM", "STTC", "CD", "HYP"]),
    "label_descriptions": lambda r: r.update(label_descriptions=["Normal ECG"]),
    "probabilities": lambda r: r.update(probabilities=[0.1, 0.2]),
    "true": lambda r: r.update(true=[0, 1, 2, 0, 1]),
    "thresholds": lambda r: r.update(thresholds=[0.5, 0.5, 1.5, 0.5, 0.5]),
    "n_bins": lambda r: r.update(n_bins=2.5),
    "attributions": lambda r: r["attributions"].update(gradcam={}),
    "attributions.lime.MI": lambda r: r["attributions"]["lime"].update(MI=[[0.0] * (N_BINS - 1)] * 12),
    "attributions.shap.XYZ": lambda r: r["attributions"]["shap"].update(XYZ=[[0.0] * N_BINS] * 12),
    "features": lambda r: r.update(features={"kind": "bins", "segment_names": ["a"], "runs": [[0, 1000, 0]]}),
    "lead_offset": lambda r: r.update(lead_scale=[1.0] * 12),
    "lead_scale": lambda r: r.update(lead_scale=[1.0] * 11 + [0.0], lead_offset=[0.0] * 12),
    "beats": lambda r: r.update(beats=[[5, 10, 20, 25, 30, 40, 1000]]),
    "method_flags.shap": lambda r: r.update(method_flags={"shap": "ok"}),
    "notes": lambda r: r.update(notes="resampled"),
    "colour": lambda r: r.update(colour="red"),
}

BAD_WAVE_RECORDS = {
    "features.kind": lambda r: r["features"].update(kind="beats"),
    "features.segment_names": lambda r: r["features"].update(segment_names=list("abcdef")),
    "features.runs": lambda r: r["features"]["runs"].pop(),
    "attributions.lime.MI": lambda r: r["attributions"]["lime"].update(MI=np.zeros((12, N_BINS))),
}


@pytest.mark.parametrize("field", sorted(BAD_RECORDS))
def test_contract_errors_name_record_and_field(tmp_path, field):
    records = [RECORDS[1], _breaks(BAD_RECORDS[field])]
    with pytest.raises(ValueError) as err:
        render_viewer(records, tmp_path)
    message = str(err.value)
    assert message.startswith("record 1 ("), message
    assert f"field '{field}'" in message, message
    assert not (tmp_path / "index.html").exists()


@pytest.mark.parametrize("field", sorted(BAD_WAVE_RECORDS))
def test_wave_contract_errors_name_the_field(field):
    record = copy.deepcopy(WAVE_RECORDS[0])
    record["features"] = validate_record(record)["features"]  # the dict form of the FeatureSpace
    BAD_WAVE_RECORDS[field](record)
    with pytest.raises(ValueError, match=rf"^record 3 \(ecg_id 404\): field '{re.escape(field)}'"):
        validate_record(record, 3)


def test_wave_record_contract():
    clean = validate_record(WAVE_RECORDS[0])
    assert clean["display_units"] == "mV" and clean["units"] == "z-score"
    assert clean["features"]["kind"] == "waves" and clean["features"]["segment_names"] == list(SEGMENTS)
    assert clean["n_bins"] is None
    # runs partition the record and give every beat its QRS
    runs = clean["features"]["runs"]
    assert runs[0][0] == 0 and runs[-1][1] == FS * SECONDS
    qrs = [(a, b) for a, b, seg in runs if SEGMENTS[seg] == "QRS"]
    assert qrs == [(80 * k + 26, 80 * k + 37) for k in range(13)]
    assert clean["segments"]["runs"] == runs  # waves features: the same partition as the colour bands
    assert clean["beats"][-1][-2:] == [-1, -1]
    # the median beat is in mV (scale and offset applied), R-aligned, from every beat that fits
    mb = clean["median_beat"]
    assert mb["n_beats"] == 11  # the first beat's R is 0.3 s from the start, the last 0.1 s from the end
    assert mb["r_index"] == 40 and mb["start_s"] == -0.4
    ii = np.asarray(mb["signal"][1])
    assert ii.argmax() == mb["r_index"] and ii.max() == pytest.approx(R_MV, rel=1e-3)
    assert np.median(mb["signal"][4]) == pytest.approx(OFFSET_MV, abs=0.02)
    assert mb["fiducials"] == {name: 40 + f - 30 for name, f in zip(FIDUCIALS, BEAT_FIDUCIALS)}
    assert clean["method_flags"]["lime"].startswith("failed: ")
    assert "11 beat(s)" in clean["median_beat_note"]


def test_fallback_and_legacy_records_carry_their_feature_space():
    clean = validate_record(fallback_record())
    assert clean["features"]["kind"] == "bins" and "fell back" in clean["features"]["notes"][0]
    assert clean["n_bins"] == N_BINS and clean["beats"] == [] and clean["median_beat"] is None
    assert clean["median_beat_note"] == "no beats found by delineation"
    legacy = validate_record(RECORDS[0])  # n_bins only: equal time bins
    assert legacy["features"]["runs"] == [[100 * b, 100 * (b + 1), b] for b in range(N_BINS)]
    assert legacy["segments"] is None and legacy["median_beat_note"].startswith("no beats")
    with pytest.raises(ValueError, match="field 'features': give either"):
        validate_record({**RECORDS[0], "features": fallback_record()["features"]})


def test_the_page_says_what_its_numbers_come_from_under_the_title():
    ctx = {
        "data_source": "local: <my> PTB-XL copy",
        "records_used": 878,
        "records_of_ptbxl": 21799,
        "test_records": 108,
        "label_set": "superdiagnostic",
        "labels_in_set": 5,
        "labels_with_test_positives": 5,
        "split": "holdout: train folds 1-8, validation fold 9, test fold 10",
    }
    from ptbxl_xai.evaluation.context import context_sentence

    line = context_sentence(ctx)
    page = viewer_html([make_record(1)], "run x", line)
    shown = re.search(r'<p id="page-context"[^>]*>(.*?)</p>', page).group(1)
    assert "878 of 21,799 PTB-XL records" in shown and "test fold 10" in shown and "5 with test positives" in shown
    assert "&lt;my&gt;" in shown  # escaped: a path is text, not markup
    assert re.search(r'<p id="page-context"[^>]*></p>', viewer_html([make_record(1)], "run x"))  # none given: empty


def test_method_flags_from_the_sanity_table():
    table = pd.DataFrame(
        {
            "method": ["shap", "lime", "attention", "shap_gradient"],
            "flag": ["pass", "fail", "caution", "untested"],
            "note": ["changes under randomisation", "survives randomisation", "|attention| keeps 0.6", ""],
        }
    )
    flags = method_flags_from_table(table)
    assert flags == {
        "shap": "passed: changes under randomisation",
        "lime": "failed: survives randomisation",
        "attention": "caution: |attention| keeps 0.6",
        "shap_gradient": "not checked",
    }
    assert validate_record({**RECORDS[0], "method_flags": flags})["method_flags"] == flags
    with pytest.raises(ValueError, match="unknown sanity flag 'maybe'"):
        method_flags_from_table(table.assign(flag="maybe"))


def test_median_beat_is_robust_and_aligned():
    """The median of R-aligned beats recovers the beat template despite one ectopic beat."""
    rng = np.random.default_rng(3)
    T, beats = 1000, fake_beats()
    template = np.zeros(101)
    template[35:45] = np.hanning(10) * 2.0  # a 'QRS' centred on R at index 40
    x = 0.01 * rng.standard_normal((12, T))
    for r in beats[:, 3]:
        lo, hi = max(0, r - 40), min(T, r + 61)
        x[:, lo:hi] += template[lo - (r - 40) : hi - (r - 40)]
    x[:, beats[5, 3] - 5 : beats[5, 3] + 5] += 5.0  # one wild beat
    mb = median_beat(x, beats, FS)
    assert mb.n_beats == 11 and mb.r_index == 40
    np.testing.assert_allclose(mb.signal, np.broadcast_to(template, (12, 101)), atol=0.05)
    assert mb.segment_of_sample is not None
    assert [SEGMENTS[s] for s in mb.segment_of_sample[36:47]] == ["QRS"] * 11
    with pytest.raises(ValueError, match="no beat"):
        median_beat(x[:, :60], beats[:1], FS)


@pytest.mark.parametrize(
    "bad, problem",
    [
        (lambda r: r.pop("thresholds"), "missing"),
        (lambda r: r["signal"][4].append(0.0), "not a regular array"),
        (lambda r: r["signal"][0].__setitem__(5, float("nan")), "NaN"),
        (lambda r: r["attributions"]["shap"]["MI"][0].__setitem__(0, "0.5"), "expected numbers"),
    ],
)
def test_contract_error_details(bad, problem):
    record = _breaks(bad)
    with pytest.raises(ValueError, match=problem) as err:
        validate_record(record, 7)
    assert str(err.value).startswith("record 7 (ecg_id 101): field '")


def test_duplicate_ids_and_empty_input_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"record 1 \(ecg_id 101\): field 'ecg_id': duplicate of record 0"):
        render_viewer([RECORDS[0], RECORDS[0]], tmp_path)
    with pytest.raises(ValueError, match="non-empty list"):
        render_viewer([], tmp_path)


def test_one_self_contained_file(tmp_path):
    out = render_viewer(RECORDS, tmp_path / "viewer", title="Test <viewer> & co")
    assert out == tmp_path / "viewer" / "index.html"
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    text = out.read_text(encoding="utf-8")
    # nothing is loaded from anywhere: no external src/href, no external stylesheet or script
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"https?://", text)
    assert not re.search(r"<script[^>]+src=|<link[^>]+stylesheet", text, re.I)
    assert "{{" not in text.split('<script type="application/json"')[0]  # every placeholder filled
    assert "<title>Test &lt;viewer&gt; &amp; co</title>" in text
    # the description's markup did not close the data script or inject one
    assert text.count("</script>") == 2
    assert "\\u003c/script\\u003e" in text
    assert out.stat().st_size < 500_000  # 3 records of 12 x 1000 samples, 4 significant digits


def test_html_path_target(tmp_path):
    out = render_viewer(RECORDS[:1], tmp_path / "reports" / "ecg.html")
    assert out == tmp_path / "reports" / "ecg.html" and out.is_file()


def test_json_round_trip_and_rounding(tmp_path):
    data = embedded_json(render_viewer(RECORDS, tmp_path).read_text(encoding="utf-8"))
    assert data["title"] == "ECG explanations"
    assert [r["ecg_id"] for r in data["records"]] == [101, 202, 303]
    for original, stored in zip(RECORDS, data["records"]):
        assert stored["label_descriptions"] == DESCRIPTIONS  # markup survived as text
        assert stored["leads"] == LEADS and stored["units"] == original["units"]
        assert stored["true"] == original["true"]
        np.testing.assert_allclose(stored["signal"], original["signal"], rtol=5e-4, atol=1e-12)
        np.testing.assert_allclose(stored["probabilities"], original["probabilities"], rtol=5e-4)
        assert set(stored["attributions"]) == set(original["attributions"])
        for method, by_label in original["attributions"].items():
            for label, values in by_label.items():
                np.testing.assert_allclose(stored["attributions"][method][label], values, rtol=5e-4, atol=1e-12)
        for row in stored["signal"]:
            for v in row:
                digits = re.sub(r"e.*$", "", repr(abs(v))).replace(".", "").lstrip("0")
                assert len(digits.rstrip("0")) <= 4, v
    # rendering is deterministic: the same records give the same page
    again = render_viewer(RECORDS, tmp_path / "again")
    assert again.read_text(encoding="utf-8") == (tmp_path / "index.html").read_text(encoding="utf-8")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=len(LABELS), max_size=len(LABELS)),
    st.lists(st.floats(-1e-4, 1e-4), min_size=len(LABELS), max_size=len(LABELS)),
)
def test_the_page_shows_the_models_decision_however_close_to_the_threshold(probabilities, gaps):
    """The page decides on `predicted`; rounding probability and threshold apart must not flip it."""
    record = copy.deepcopy(RECORDS[0])
    thresholds = np.clip(np.array(probabilities) + np.array(gaps), 0, 1)
    record["probabilities"], record["thresholds"] = probabilities, thresholds.tolist()
    out = validate_record(record)
    assert out["predicted"] == [int(p >= t) for p, t in zip(probabilities, thresholds)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_rounding_keeps_every_finite_value_finite_and_close(values):
    """Subnormal probabilities or attributions must not turn into NaN (10**exp overflows there)."""
    from ptbxl_xai.report.viewer import _round_sig

    rounded = _round_sig(np.array(values))
    assert np.isfinite(rounded).all()
    np.testing.assert_allclose(rounded, values, rtol=5e-4, atol=1e-320)


def test_numpy_inputs_accepted(tmp_path):
    record = copy.deepcopy(RECORDS[0])
    record["ecg_id"] = np.int64(5)
    record["signal"] = np.asarray(record["signal"], dtype=np.float32)
    record["true"] = np.asarray(record["true"], dtype=bool)
    record["attributions"] = {"shap": {"MI": np.zeros((12, N_BINS))}}
    data = embedded_json(render_viewer([record], tmp_path).read_text(encoding="utf-8"))
    assert data["records"][0]["ecg_id"] == 5
    assert data["records"][0]["attributions"] == {"shap": {"MI": [[0.0] * N_BINS] * 12}}


# ------------------------------------------------------------------------------------------------
# browser
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright Python package (pip install playwright)")
    if missing:
        pytest.skip("browser tests need " + " and ".join(missing))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / ".gitignore").write_text("*\n")  # test output, never committed
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def viewer_url(browser, tmp_path_factory):
    out = render_viewer(RECORDS, tmp_path_factory.mktemp("viewer"), title="ECG explanations (test)")
    shutil.copy(out, ARTIFACTS / "index.html")  # open it by hand to see what the tests saw
    return out.as_uri()


@pytest.fixture
def page(browser, viewer_url):
    context = browser.new_context(
        viewport={"width": 1600, "height": 1100}, device_scale_factor=1, accept_downloads=True
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    pg.goto(viewer_url)
    pg.wait_for_selector("html[data-ready=true]")
    yield pg
    context.close()
    assert not errors, errors


def state(pg) -> dict:
    return pg.evaluate("() => JSON.parse(JSON.stringify(window.viewerState))")


def geometry(pg) -> dict:
    return pg.evaluate("() => window.viewerGeometry()")


def shot(pg, name: str):
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def cell_of(geo: dict, lead: str) -> dict:
    return next(c for c in geo["cells"] if c["lead"] == lead)


# Statistics of a canvas rectangle: dark (trace) pixels, and the mean colour of the others.
REGION_JS = """([x, y, w, h]) => {
  const c = document.querySelector('[data-testid="ecg-canvas"]');
  const d = c.getContext('2d').getImageData(Math.round(x), Math.round(y), Math.round(w), Math.round(h)).data;
  let dark = 0, n = 0, r = 0, g = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 100 && d[i + 1] < 100 && d[i + 2] < 100) { dark++; continue; }
    n++; r += d[i]; g += d[i + 1]; b += d[i + 2];
  }
  return {dark, r: r / Math.max(n, 1), g: g / Math.max(n, 1), b: b / Math.max(n, 1)};
}"""

# Mean colour of every (lead, bin) band: one round trip for the whole canvas.
BANDS_JS = """() => {
  const geo = window.viewerGeometry(), c = document.querySelector('[data-testid="ecg-canvas"]');
  const ctx = c.getContext('2d'), out = {};
  for (const cell of geo.cells) {
    out[cell.lead] = [];
    for (let b = 0; b < geo.nBins; b++) {
      const t0 = Math.max(cell.t0, b * geo.binSeconds), t1 = Math.min(cell.t1, (b + 1) * geo.binSeconds);
      const x0 = Math.round(cell.x + (t0 - cell.t0) * geo.pxPerSecond) + 3;
      const x1 = Math.round(cell.x + (t1 - cell.t0) * geo.pxPerSecond) - 3;
      if (x1 - x0 < 2) { out[cell.lead].push(null); continue; }   // bin (almost) out of view
      const y0 = cell.y + cell.labelH + 3, y1 = cell.y + cell.h - 3;
      const d = ctx.getImageData(x0, y0, x1 - x0, y1 - y0).data;
      let n = 0, r = 0, g = 0, bl = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] < 100 && d[i + 1] < 100 && d[i + 2] < 100) continue;   // trace
        n++; r += d[i]; g += d[i + 1]; bl += d[i + 2];
      }
      out[cell.lead].push([r / n, g / n, bl / n]);
    }
  }
  return out;
}"""


def cell_region(cell: dict) -> list[float]:
    """Inside of a cell: a few pixels off the edges, below the lead-name strip."""
    return [cell["x"] + 3, cell["y"] + cell["labelH"] + 3, cell["w"] - 6, cell["h"] - cell["labelH"] - 6]


def trace_pixels(pg, lead: str) -> int:
    return pg.evaluate(REGION_JS, cell_region(cell_of(geometry(pg), lead)))["dark"]


def choose(pg, testid: str, value: str):
    pg.get_by_test_id(testid).select_option(value)


def test_page_loads_with_labelled_controls(page):
    s = state(page)
    assert s["record"] == 101 and s["recordIndex"] == 0
    assert s["layout"] == "12x1" and s["gain"] == 10 and s["zoom"] == 1 and s["pan"] == 0
    assert s["overlay"] == "shap" and s["label"] in LABELS
    assert s["visibleLeads"] == LEADS
    assert page.get_by_test_id("record-select").locator("option").all_inner_texts() == ["ECG 101", "ECG 202", "ECG 303"]
    # every control has an accessible name and a test id; the canvas takes keyboard focus
    unnamed = page.evaluate("""() => Array.from(document.querySelectorAll('button, select, input, canvas'))
        .filter(e => !e.dataset.testid || !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                                           || e.textContent.trim())).map(e => e.outerHTML)""")
    assert unnamed == []
    assert page.get_by_test_id("ecg-canvas").get_attribute("tabindex") == "0"
    # the page and canvas follow the 10 s x 25 mm/s x 4 px/mm paper geometry
    geo = geometry(page)
    assert geo["plotW"] == 1000 and geo["pxPerSecond"] == 100 and len(geo["cells"]) == 12
    assert all(trace_pixels(page, lead) > 50 for lead in LEADS)
    # the legend tells the paper scale; FP and FN are marked in the label table
    assert "25 mm/s, 10 mm/mV" in page.get_by_test_id("legend").inner_text()
    outcomes = page.locator("#label-rows tr").evaluate_all("rows => rows.map(r => r.dataset.outcome)")
    assert "fp" in outcomes and "fn" in outcomes
    assert page.evaluate("() => window.__pwned") is None
    hyp = page.locator('[data-testid="label-row-HYP"] label')
    assert hyp.get_attribute("title") == DESCRIPTIONS["HYP"]
    shot(page, "01_initial")


def test_switch_record_and_label(page):
    choose(page, "record-select", "1")
    s = state(page)
    assert s["record"] == 202 and s["recordIndex"] == 1
    assert "z-score" in page.get_by_test_id("legend").inner_text()
    assert "drawn as 1 mV" in page.get_by_test_id("legend").inner_text()
    shot(page, "02_record_202_zscore")
    page.get_by_test_id("label-radio-STTC").check()
    assert state(page)["label"] == "STTC"
    assert page.get_by_test_id("label-row-STTC").get_attribute("class") == "selected"
    # keyboard: the arrow keys move between label radios
    page.get_by_test_id("label-radio-STTC").focus()
    page.keyboard.press("ArrowDown")
    assert state(page)["label"] != "STTC"
    # a label picked from the row's name works too, and survives a record switch
    page.locator('[data-testid="label-row-CD"] label').click()
    assert state(page)["label"] == "CD"
    choose(page, "record-select", "2")
    assert state(page)["record"] == 303 and state(page)["label"] == "CD"
    # record 303 has no LIME: the option is disabled
    assert page.locator('[data-testid="overlay-select"] option[value="lime"]').is_disabled()
    shot(page, "03_record_303_label_CD")


@pytest.mark.parametrize("method", METHODS)
def test_overlay_marks_the_hot_bin(page, method):
    ecg_id, label = 202, "MI"
    choose(page, "record-select", "1")
    page.get_by_test_id(f"label-radio-{label}").check()
    choose(page, "overlay-select", method)
    assert state(page)["overlay"] == method and state(page)["label"] == label
    hot_lead, hot_bin = hot_spot(ecg_id, label, method)
    bands = page.evaluate(BANDS_JS)

    def chroma(rgb):
        return max(rgb) - min(rgb)

    # the most coloured band on the whole canvas is exactly the hot (lead, bin)
    strongest = max(((lead, b) for lead in LEADS for b in range(N_BINS)), key=lambda k: chroma(bands[k[0]][k[1]]))
    assert strongest == (LEADS[hot_lead], hot_bin)
    r, g, b = bands[LEADS[hot_lead]][hot_bin]
    if method == "lime":
        assert b > r + 50, (r, g, b)  # negative: blue end of the diverging scale
    else:
        assert r > b + 50, (r, g, b)  # positive SHAP: red; attention: dark orange
    assert "legend-scale" in page.get_by_test_id("legend").inner_html()
    shot(page, f"04_overlay_{method}")

    choose(page, "overlay-select", "none")
    plain = page.evaluate(BANDS_JS)[LEADS[hot_lead]][hot_bin]
    assert chroma(plain) < chroma((r, g, b)) - 40, (plain, (r, g, b))
    # without an overlay every band is just the pink paper: all alike
    chromas = [chroma(plain_band) for lead in LEADS for plain_band in page.evaluate(BANDS_JS)[lead]]
    assert max(chromas) - min(chromas) < 15
    shot(page, f"05_overlay_none_after_{method}")


def test_hide_and_show_leads(page):
    assert trace_pixels(page, "V2") > 50
    page.get_by_test_id("lead-toggle-V2").uncheck()
    assert "V2" not in state(page)["visibleLeads"] and len(state(page)["visibleLeads"]) == 11
    assert trace_pixels(page, "V2") == 0
    assert trace_pixels(page, "V1") > 50 and trace_pixels(page, "V3") > 50
    shot(page, "06_lead_V2_hidden")
    page.get_by_test_id("lead-toggle-V2").check()
    assert trace_pixels(page, "V2") > 50
    page.get_by_test_id("leads-none").click()
    assert state(page)["visibleLeads"] == []
    assert all(trace_pixels(page, lead) == 0 for lead in LEADS)
    page.get_by_test_id("leads-all").click()
    assert state(page)["visibleLeads"] == LEADS
    # keyboard: space toggles a focused checkbox
    page.get_by_test_id("lead-toggle-aVR").focus()
    page.keyboard.press("Space")
    assert "aVR" not in state(page)["visibleLeads"] and trace_pixels(page, "aVR") == 0


def test_layout_3x4(page):
    before = geometry(page)
    choose(page, "layout-select", "3x4")
    assert state(page)["layout"] == "3x4"
    geo = geometry(page)
    assert (geo["rows"], geo["cols"]) == (3, 4)
    assert geo["width"] == before["width"] and geo["height"] < before["height"]
    size = page.evaluate("() => { const c = document.querySelector('canvas'); return [c.width, c.height]; }")
    assert size == [geo["width"], geo["height"]]
    expected = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
    for cell in geo["cells"]:
        assert expected[cell["row"]][cell["col"]] == cell["lead"]
        assert cell["t0"] == pytest.approx(2.5 * cell["col"]) and cell["t1"] - cell["t0"] == pytest.approx(2.5)
    assert all(trace_pixels(page, lead) > 20 for lead in LEADS)
    shot(page, "07_layout_3x4")
    page.get_by_test_id("lead-toggle-V5").uncheck()
    assert trace_pixels(page, "V5") == 0 and trace_pixels(page, "V4") > 20
    choose(page, "layout-select", "12x1")
    assert geometry(page)["height"] == before["height"]


def test_gain_scales_calibration_pulse(page):
    def pulse_height():
        geo = geometry(page)
        baseline = geo["cells"][0]["baseline"]
        # the pulse top runs from 4 to 9 mm in the margin; find its highest dark pixel
        col = page.evaluate(
            """([x, h]) => {
          const d = document.querySelector('canvas').getContext('2d').getImageData(x, 0, 1, h).data;
          for (let y = 0; y < h; y++) if (d[4 * y] < 160 && d[4 * y + 1] < 160 && d[4 * y + 2] < 160) return y;
          return -1; }""",
            [int(6.5 * geo["pxPerMm"]), int(baseline)],
        )
        return (baseline - col) / geo["pxPerMm"]  # in mm

    assert pulse_height() == pytest.approx(10, abs=0.5)
    for gain in (5, 20):
        choose(page, "gain-select", str(gain))
        assert state(page)["gain"] == gain
        assert pulse_height() == pytest.approx(gain, abs=0.5)
        shot(page, f"08_gain_{gain}")


def test_zoom_and_pan(page):
    geo1 = geometry(page)
    page.get_by_test_id("zoom-in").click()
    s = state(page)
    assert s["zoom"] == pytest.approx(1.5) and s["windowSeconds"] == pytest.approx(10 / 1.5)
    assert geometry(page)["pxPerSecond"] == pytest.approx(1.5 * geo1["pxPerSecond"])
    page.get_by_test_id("zoom-in").click()
    assert state(page)["zoom"] == pytest.approx(2.25)
    shot(page, "09_zoom_2.25")

    slider = page.get_by_test_id("pan-slider")
    assert float(slider.get_attribute("max")) == pytest.approx(1000 * (10 - 10 / 2.25), abs=1)
    slider.fill("3000")
    assert state(page)["pan"] == pytest.approx(3.0)
    assert geometry(page)["cells"][0]["t0"] == pytest.approx(3.0)
    slider.focus()
    page.keyboard.press("ArrowRight")  # native range keyboard step
    assert state(page)["pan"] == pytest.approx(3.01)
    shot(page, "10_panned")

    # drag the paper: moving the pointer right shows earlier time
    box = page.get_by_test_id("ecg-canvas").bounding_box()
    pan = state(page)["pan"]
    page.mouse.move(box["x"] + 600, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 825, box["y"] + 100, steps=5)
    page.mouse.up()
    assert state(page)["pan"] == pytest.approx(pan - 225 / geometry(page)["pxPerSecond"], abs=0.02)

    # wheel zooms around the cursor: the time under it stays put
    x = 560
    t_before = state(page)["pan"] + (x - geometry(page)["plotX"]) / geometry(page)["pxPerSecond"]
    page.mouse.move(box["x"] + x, box["y"] + 100)
    page.mouse.wheel(0, -120)
    page.wait_for_function("() => window.viewerState.zoom > 2.3")
    s, geo = state(page), geometry(page)
    assert s["zoom"] == pytest.approx(2.25 * 1.2)
    assert s["pan"] + (x - geo["plotX"]) / geo["pxPerSecond"] == pytest.approx(t_before, abs=0.01)

    # keyboard on the focused canvas
    page.get_by_test_id("ecg-canvas").focus()
    page.keyboard.press("-")
    assert state(page)["zoom"] == pytest.approx(2.25 * 1.2 / 1.5)
    pan = state(page)["pan"]
    page.keyboard.press("ArrowLeft")
    assert state(page)["pan"] < pan
    page.keyboard.press("0")
    assert (state(page)["zoom"], state(page)["pan"]) == (1, 0)
    assert page.get_by_test_id("pan-slider").is_disabled()  # nothing to pan at zoom 1


def test_zoomed_overlay_follows_time(page):
    """After zoom and pan the hot band is drawn where its time now is."""
    choose(page, "overlay-select", "shap")
    page.get_by_test_id("label-radio-CD").check()
    lead, b = hot_spot(101, "CD", "shap")
    assert b >= 6  # late enough to need panning
    for _ in range(2):
        page.get_by_test_id("zoom-in").click()
    page.get_by_test_id("pan-slider").fill("0")
    assert not page.evaluate(BANDS_JS)[LEADS[lead]][b]  # out of view at the start
    page.get_by_test_id("pan-slider").fill("5000")
    assert state(page)["pan"] == pytest.approx(5.0)
    assert geometry(page)["cells"][lead]["t0"] == pytest.approx(5.0)
    bands = page.evaluate(BANDS_JS)
    visible = {(ld, i): rgb for ld, row in bands.items() for i, rgb in enumerate(row) if rgb}
    assert (LEADS[lead], b) in visible
    strongest = max(visible, key=lambda k: max(visible[k]) - min(visible[k]))
    assert strongest == (LEADS[lead], b)
    shot(page, "11_zoomed_overlay")


def test_exports(page, tmp_path):
    choose(page, "overlay-select", "lime")
    page.get_by_test_id("label-radio-MI").check()
    size = page.evaluate("() => { const c = document.querySelector('canvas'); return [c.width, c.height]; }")

    with page.expect_download() as info:
        page.get_by_test_id("export-png").click()
    png = Path(info.value.path()).read_bytes()
    info.value.save_as(ARTIFACTS / "export.png")
    assert info.value.suggested_filename == "ecg101_MI_lime.png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert list(struct.unpack(">II", png[16:24])) == size

    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == (
        "ecg_id,label,probability,threshold,predicted,true,feature_space,method,lead,feature,"
        "t_start_s,t_end_s,duration_s,attribution"
    )
    assert len(rows) == 12 * N_BINS * len(METHODS)
    assert {(r["method"], r["lead"], r["feature"]) for r in rows} == {
        (m, lead, f"bin{b:02d}") for m in METHODS for lead in LEADS for b in range(N_BINS)
    }
    lead, b = hot_spot(101, "MI", "lime")
    hot = next(r for r in rows if r["method"] == "lime" and r["lead"] == LEADS[lead] and r["feature"] == f"bin{b:02d}")
    assert float(hot["attribution"]) == -1.0 and float(hot["t_start_s"]) == b * SECONDS / N_BINS
    assert float(hot["duration_s"]) == SECONDS / N_BINS and hot["feature_space"] == "bins"
    assert all(r["label"] == "MI" and r["ecg_id"] == "101" for r in rows)

    with page.expect_download() as info:
        page.get_by_test_id("export-json").click()
    exported = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert exported["ecg_id"] == 101 and exported["label_names"] == LABELS
    assert exported["attributions"]["lime"]["MI"][lead][b] == -1.0
    assert exported["predicted"] == [int(p >= 0.5) for p in exported["probabilities"]]
    assert exported["view"]["overlay"] == "lime"


def test_print_report(page):
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    choose(page, "overlay-select", "attention")
    page.get_by_test_id("print-report").click()
    assert page.evaluate("() => window.__printed") == 1
    report = page.get_by_test_id("report")
    assert not report.is_visible()  # on screen only the app shows
    src = report.locator("img").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    assert report.locator("tbody tr").count() == len(LABELS)
    assert "Attention" in report.inner_text() and "ECG 101" in report.inner_text()
    page.emulate_media(media="print")
    assert report.is_visible() and not page.locator("#app").is_visible()
    shot(page, "12_print_report")


# ------------------------------------------------------------------------------------------------
# mV on paper, wave features, beats, median beat, sanity-check flags (issue 10)
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def wave_page(browser, tmp_path):
    out = render_viewer(WAVE_RECORDS, tmp_path / "waves", title="ECG explanations on wave features (test)")
    shutil.copy(out, ARTIFACTS / "waves.html")
    context = browser.new_context(viewport={"width": 1600, "height": 1100}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    pg.goto(out.as_uri())
    pg.wait_for_selector("html[data-ready=true]")
    yield pg
    context.close()
    assert not errors, errors


# Rows of one canvas column [x, y0, y1): 'dark' (trace), 'grid' (pink lines) or 'paper'.
COLUMN_JS = """([id, x, y0, y1]) => {
  const d = document.getElementById(id).getContext('2d').getImageData(Math.round(x), y0, 1, y1 - y0).data;
  const out = [];
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    out.push(r < 100 && g < 100 && b < 100 ? 'dark' : (r > 200 && g < 235 && r - g > 25 ? 'grid' : 'paper'));
  }
  return out;
}"""

# Mean colour (trace pixels left out) of a canvas rectangle.
MEAN_JS = """([id, x, y, w, h]) => {
  const d = document.getElementById(id).getContext('2d').getImageData(Math.round(x), Math.round(y), Math.round(w), Math.round(h)).data;
  let n = 0, r = 0, g = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 100 && d[i + 1] < 100 && d[i + 2] < 100) continue;
    n++; r += d[i]; g += d[i + 1]; b += d[i + 2];
  }
  return [r / n, g / n, b / n];
}"""


def column(pg, x, y0, y1, canvas="ecg"):
    return pg.evaluate(COLUMN_JS, [canvas, x, int(y0), int(y1)])


def mean_colour(pg, x, y, w, h, canvas="ecg"):
    return pg.evaluate(MEAN_JS, [canvas, x, y, w, h])


def chroma(rgb):
    return max(rgb) - min(rgb)


def run_x(geo, cell, start, stop):
    """Pixel span of samples [start, stop) in a cell of the main canvas."""
    x0 = cell["x"] + (start / FS - cell["t0"]) * geo["pxPerSecond"]
    return x0, (stop - start) / FS * geo["pxPerSecond"]


def test_calibration_pulse_is_ten_small_squares_of_the_paper(wave_page):
    """Must show: the 1 mV pulse is 10 mm = 10 small squares of the grid drawn on the same canvas."""
    geo = geometry(wave_page)
    mm, cell = geo["pxPerMm"], geo["cells"][0]
    assert mm == 4
    # pulse: its top runs from 4 to 9 mm in the margin, its foot at 2-4 mm lies on the baseline;
    # each is a ~1.3 px anti-aliased line, located by the centre of its dark pixels

    def line_centre(x):
        col = column(wave_page, x, cell["y"], cell["y"] + cell["h"])
        dark = [i for i, kind in enumerate(col) if kind == "dark"]
        assert dark and dark[-1] - dark[0] <= 2, dark  # one horizontal line in this column
        return cell["y"] + (dark[0] + dark[-1]) / 2

    top, foot = line_centre(6.5 * mm), line_centre(3 * mm)
    assert foot == pytest.approx(cell["baseline"], abs=1)
    # the paper in a margin column beside the pulse: the grid lines from its top to its foot
    y0 = int(top) - 2
    paper = column(wave_page, 13.5 * mm, y0, int(foot) + 3)
    lines = [y0 + i for i, kind in enumerate(paper) if kind == "grid" and (i == 0 or paper[i - 1] != "grid")]
    assert lines[0] == pytest.approx(top, abs=1) and lines[-1] == pytest.approx(foot, abs=1)  # on grid lines
    assert len(lines) - 1 == 10  # 10 small squares
    assert np.diff(lines).tolist() == [mm] * 10  # of 1 mm each
    shot(wave_page, "20_waves_initial")


def test_trace_is_drawn_in_mv_not_in_model_units(wave_page):
    """Lead II's R of R_MV mV rises R_MV x 10 mm above its baseline at 10 mm/mV (z-scores would
    give R_MV / lead_scale x 10 mm), and aVL's 0.5 mV offset lifts its baseline by 5 mm."""
    wave_page.get_by_test_id("waves-toggle").uncheck()
    choose(wave_page, "overlay-select", "none")
    geo = geometry(wave_page)
    mm = geo["pxPerMm"]
    for gain in (10, 20):
        choose(wave_page, "gain-select", str(gain))
        geo = geometry(wave_page)
        ii = cell_of(geo, "II")
        r_sample = 80 * 3 + 30  # R of the fourth beat
        x = ii["x"] + (r_sample / FS - ii["t0"]) * geo["pxPerSecond"]
        y0 = ii["y"] - 5 * mm  # a tall R may rise into the row above, as on paper
        peak = min(
            column(wave_page, x + dx, y0, ii["baseline"]).index("dark") + y0
            for dx in (-1, 0, 1)
            if "dark" in column(wave_page, x + dx, y0, ii["baseline"])
        )
        assert (ii["baseline"] - peak) / mm == pytest.approx(R_MV * gain, abs=0.75)
    choose(wave_page, "gain-select", "10")
    geo = geometry(wave_page)
    avl = cell_of(geo, "aVL")
    x = avl["x"] + (0.72 - avl["t0"]) * geo["pxPerSecond"]  # TP: flat at the lead's offset
    flat = column(wave_page, x, avl["y"], avl["y"] + avl["h"]).index("dark") + avl["y"]
    assert (avl["baseline"] - flat) / mm == pytest.approx(OFFSET_MV * 10, abs=0.5)
    legend = wave_page.get_by_test_id("legend").inner_text()
    assert "Signal in mV (the filtered ECG; the model's own input is z-score)" in legend
    assert "signal in mV" in wave_page.get_by_test_id("record-info").inner_text()
    shot(wave_page, "21_mv_no_bands")


def test_wave_attributions_colour_the_segment_in_every_beat(wave_page):
    """SHAP on (V2, QRS): every beat's QRS in V2 is red; V2's other segments and V1's QRS are not."""
    wave_page.get_by_test_id("waves-toggle").uncheck()
    choose(wave_page, "overlay-select", "shap")
    geo = geometry(wave_page)
    clean = validate_record(WAVE_RECORDS[0])
    v1, v2 = cell_of(geo, "V1"), cell_of(geo, "V2")
    y = v2["labelH"] + 3
    h = v2["h"] - v2["labelH"] - 12
    seen = 0
    for start, stop, seg in clean["features"]["runs"]:
        x0, w = run_x(geo, v2, start, stop)
        if w < 4:
            continue
        hot = mean_colour(wave_page, x0 + 1, v2["y"] + y, w - 2, h)
        other = mean_colour(wave_page, x0 + 1, v1["y"] + y, w - 2, h)
        if SEGMENTS[seg] == "QRS":
            seen += 1
            assert hot[0] > hot[2] + 60, hot  # red
            assert chroma(other) < 40, other
        else:
            assert chroma(hot) < 40, (SEGMENTS[seg], hot)
    assert seen == 13
    assert "12 leads x 6 wave segments" in wave_page.get_by_test_id("legend-features").inner_text()
    shot(wave_page, "22_wave_shap")


def test_wave_bands_ribbon_and_fiducial_marks(wave_page):
    clean = validate_record(WAVE_RECORDS[0])
    runs = {SEGMENTS[seg]: (a, b) for a, b, seg in clean["segments"]["runs"][::-1]}  # first run of each
    choose(wave_page, "overlay-select", "none")
    geo = geometry(wave_page)
    cell = cell_of(geo, "I")
    inside = (cell["y"] + cell["labelH"] + 3, cell["h"] - cell["labelH"] - 6)

    def band(name, c=cell):
        x0, w = run_x(geo, c, *runs[name])
        return mean_colour(wave_page, x0 + 1, inside[0], w - 2, inside[1])

    qrs, t_wave, tp = band("QRS"), band("T"), band("TP")
    assert qrs[0] > qrs[2] + 40 and qrs[1] > qrs[2] + 20, qrs  # orange
    assert t_wave[1] > t_wave[0] + 10, t_wave  # green
    assert chroma(tp) < 40 and chroma(qrs) > chroma(tp) + 40
    wave_page.get_by_test_id("waves-toggle").uncheck()
    assert state(wave_page)["waves"] is False
    assert chroma(band("QRS")) < 40
    assert "legend-waves" not in wave_page.get_by_test_id("legend").inner_html()

    # with an attribution shown, the segments move to a ribbon at the foot of every lead
    wave_page.get_by_test_id("waves-toggle").check()
    choose(wave_page, "overlay-select", "shap")
    x0, w = run_x(geo, cell, *runs["QRS"])
    ribbon = mean_colour(wave_page, x0 + 1, cell["y"] + cell["h"] - 6, w - 2, 4)
    assert ribbon[0] > ribbon[2] + 80, ribbon
    shot(wave_page, "23_ribbon")

    # fiducial marks: dashed P-onset lines (blue) and R triangles, only when asked for
    p_on = BEAT_FIDUCIALS[0] + 80  # second beat
    x = cell["x"] + (p_on / FS - cell["t0"]) * geo["pxPerSecond"]
    blue_js = """([x, y0, y1]) => { const d = document.getElementById('ecg').getContext('2d')
        .getImageData(Math.round(x), y0, 1, y1 - y0).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 120 && d[i] < 80) n++; return n; }"""
    span = [x, int(cell["y"] + cell["labelH"]), int(cell["y"] + cell["h"] - 10)]
    choose(wave_page, "overlay-select", "none")
    wave_page.get_by_test_id("waves-toggle").uncheck()
    assert wave_page.evaluate(blue_js, span) == 0
    wave_page.get_by_test_id("fiducials-toggle").check()
    assert state(wave_page)["fiducials"] is True
    assert wave_page.evaluate(blue_js, span) > 10
    r_x = cell["x"] + ((80 + 30) / FS - cell["t0"]) * geo["pxPerSecond"]
    assert "dark" in column(wave_page, r_x, cell["y"] + cell["labelH"], cell["y"] + cell["labelH"] + 5)
    assert "R peak" in wave_page.get_by_test_id("legend-fiducials").inner_text()
    for _ in range(3):
        wave_page.get_by_test_id("zoom-in").click()
    shot(wave_page, "24_fiducials_zoomed")


def test_median_beat_panel(wave_page):
    """R-aligned median beats in mV at 50 mm/s; with wave features each segment takes its attribution."""
    choose(wave_page, "overlay-select", "shap")
    geo = geometry(wave_page)
    med = geo["median"]
    mm = geo["pxPerMm"]
    assert med and len(med["cells"]) == 12 and med["pxPerSecond"] == 50 * mm
    assert "median of 11 beat(s), aligned on R" in wave_page.get_by_test_id("median-note").inner_text()
    ii = next(c for c in med["cells"] if c["lead"] == "II")
    r_x = ii["x"] + med["rIndex"] / FS * med["pxPerSecond"]
    tops = {}
    for dx in range(-12, 13):
        col = column(wave_page, r_x + dx, ii["y"] + 2, ii["baseline"], canvas="median")
        if "dark" in col:
            tops[dx] = col.index("dark") + ii["y"] + 2
    peak_dx = min(tops, key=tops.get)
    assert abs(peak_dx) <= 2  # the peak is at R
    assert (ii["baseline"] - tops[peak_dx]) / mm == pytest.approx(R_MV * 10, abs=0.75)  # in mV
    # the QRS band of the hot lead is red, the same band in V1 is not
    v1, v2 = (next(c for c in med["cells"] if c["lead"] == name) for name in ("V1", "V2"))
    qrs = [(v2, v1)]
    for hot_cell, cold_cell in qrs:
        x = hot_cell["x"] + (med["rIndex"] - 3) / FS * med["pxPerSecond"]
        hot = mean_colour(wave_page, x, hot_cell["y"] + hot_cell["labelH"] + 2, 8, 20, canvas="median")
        x = cold_cell["x"] + (med["rIndex"] - 3) / FS * med["pxPerSecond"]
        cold = mean_colour(wave_page, x, cold_cell["y"] + cold_cell["labelH"] + 2, 8, 20, canvas="median")
        assert hot[0] > hot[2] + 60 and chroma(cold) < 45, (hot, cold)
    assert "SHAP attribution for" in wave_page.get_by_test_id("median-note").inner_text()
    wave_page.get_by_test_id("median-canvas").scroll_into_view_if_needed()
    shot(wave_page, "25_median_beat")


def test_wave_exports_and_report(wave_page):
    """CSV rows per lead x wave segment with its total duration; the printed report holds the median beats."""
    choose(wave_page, "overlay-select", "shap")
    rows = list(csv.DictReader(io.StringIO(wave_page.evaluate("() => window.ECGViewer.attributionsCsv()"))))
    assert len(rows) == 12 * len(SEGMENTS) * len(METHODS)
    hot = next(r for r in rows if r["method"] == "shap" and (r["lead"], r["feature"]) == HOT_FEATURE)
    assert hot["feature_space"] == "waves" and float(hot["attribution"]) == 1.0
    assert hot["t_start_s"] == "" and float(hot["duration_s"]) == pytest.approx(13 * 0.11)  # 11 samples x 13 beats
    wave_page.evaluate("() => { window.print = () => {}; }")
    wave_page.get_by_test_id("print-report").click()
    report = wave_page.get_by_test_id("report")
    assert report.locator("img").count() == 2 and "Median beat per lead" in report.inner_text()
    assert "Sanity check: passed" in report.inner_text()


def test_fallback_record_says_it_is_on_bins(wave_page):
    choose(wave_page, "record-select", "1")
    assert state(wave_page)["record"] == 505
    assert "fell back to 10 time bins" in wave_page.get_by_test_id("record-notes").inner_text()
    assert "fell back" in wave_page.get_by_test_id("legend-features").inner_text()
    assert "not delineated" not in wave_page.get_by_test_id("record-info").inner_text()
    assert "0 beats delineated" in wave_page.get_by_test_id("record-info").inner_text()
    assert wave_page.get_by_test_id("median-canvas").is_hidden()
    assert "no beats found" in wave_page.get_by_test_id("median-note").inner_text()
    assert wave_page.get_by_test_id("waves-toggle").is_disabled()
    assert wave_page.get_by_test_id("fiducials-toggle").is_disabled()
    # the overlay still marks its hot bin, on bins
    lead, b = hot_spot(505, state(wave_page)["label"], "shap")
    bands = wave_page.evaluate(BANDS_JS)
    strongest = max(((ld, i) for ld in LEADS for i in range(N_BINS)), key=lambda k: chroma(bands[k[0]][k[1]]))
    assert strongest == (LEADS[lead], b)
    shot(wave_page, "26_fallback_bins")


def test_method_flags_in_the_method_description(wave_page):
    flags = {m: wave_page.get_by_test_id(f"method-flag-{m}").get_attribute("data-status") for m in METHODS}
    assert flags == {"shap": "passed", "lime": "failed", "attention": "caution"}
    assert "Spearman 0.91" in wave_page.get_by_test_id("method-flag-lime").inner_text()
    assert wave_page.get_by_test_id("method-warning").count() == 0
    option = wave_page.locator('[data-testid="overlay-select"] option[value="lime"]')
    assert option.inner_text() == "LIME (failed sanity check)"
    choose(wave_page, "overlay-select", "lime")
    warning = wave_page.get_by_test_id("method-warning").inner_text()
    assert "LIME failed its sanity check (Spearman 0.91 with the randomised model)" in warning
    shot(wave_page, "27_method_flags")
    choose(wave_page, "overlay-select", "attention")
    assert "with a caution (|attention| keeps 0.62" in wave_page.get_by_test_id("method-warning").inner_text()
    # a record without flags: every method 'not checked'
    choose(wave_page, "record-select", "1")
    assert wave_page.get_by_test_id("method-flag-shap").get_attribute("data-status") == "not-checked"


@pytest.mark.parametrize("width", [1280, 1600])
def test_label_table_is_not_clipped(browser, tmp_path, width):
    """71 labels (the 'all' set) with long names: the table fits its panel (no hidden columns) and
    scrolls vertically under a sticky header."""
    record = make_record(1)
    names = ["NORM"] + [f"LABEL_{i:02d}_WITH_A_LONG_NAME" for i in range(70)]
    probs = np.linspace(0.01, 0.99, 71)
    record.update(
        label_names=names,
        label_descriptions={},
        probabilities=probs.tolist(),
        true=(probs > 0.7).astype(int).tolist(),
        thresholds=[0.5] * 71,
        attributions={"shap": {names[-1]: record["attributions"]["shap"]["MI"]}},
    )
    out = render_viewer([record], tmp_path)
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    pg.goto(out.as_uri())
    pg.wait_for_selector("html[data-ready=true]")
    fit = pg.evaluate("""() => {
      const wrap = document.querySelector('[data-testid="label-table-wrap"]');
      const panel = wrap.closest('aside').getBoundingClientRect();
      const cells = Array.from(document.querySelectorAll('#label-rows td:last-child, #label-table th:last-child'));
      return {scrollW: wrap.scrollWidth, clientW: wrap.clientWidth, scrollH: wrap.scrollHeight,
              clientH: wrap.clientHeight, right: Math.max(...cells.map(c => c.getBoundingClientRect().right)),
              panelRight: panel.right};
    }""")
    assert fit["scrollW"] <= fit["clientW"], fit
    assert fit["right"] <= fit["panelRight"], fit
    assert fit["scrollH"] > fit["clientH"]  # 71 rows scroll inside the panel
    # long names wrap to fit, a statement code does not: one line box for NORM
    assert pg.evaluate("() => document.querySelector('#label-rows label.code').getClientRects().length") == 1
    pg.locator('[data-testid="label-table-wrap"]').evaluate("w => { w.scrollTop = w.scrollHeight; }")
    header = pg.locator("#label-table thead th").nth(1).bounding_box()
    wrap = pg.locator('[data-testid="label-table-wrap"]').bounding_box()
    assert header["y"] == pytest.approx(wrap["y"], abs=2)  # the header stays in view
    pg.get_by_test_id("label-table-wrap").scroll_into_view_if_needed()
    pg.screenshot(path=str(ARTIFACTS / f"28_label_table_{width}.png"), full_page=False)
    context.close()


def test_records_set_from_script_for_other_pages(browser, tmp_path):
    """The live app fills an empty page: ECGViewer.setRecords, then upsertRecord when SHAP arrives."""
    page_file = tmp_path / "app.html"
    page_file.write_text(viewer_html([], title="live"), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1600, "height": 1100}, device_scale_factor=1)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(page_file.as_uri())
    pg.wait_for_selector("html[data-ready=true]")
    clean = validate_record(WAVE_RECORDS[0])
    first = {**clean, "attributions": {"attention": clean["attributions"]["attention"]}}
    pg.evaluate("r => window.ECGViewer.setRecords([r])", first)
    assert state(pg)["record"] == 404 and state(pg)["overlay"] == "attention"
    assert pg.locator('[data-testid="overlay-select"] option[value="shap"]').is_disabled()
    pg.evaluate("r => window.ECGViewer.upsertRecord(r)", clean)
    assert pg.get_by_test_id("record-select").locator("option").count() == 1
    assert not pg.locator('[data-testid="overlay-select"] option[value="shap"]').is_disabled()
    pg.evaluate("r => window.ECGViewer.upsertRecord(r)", validate_record(RECORDS[0]))
    assert state(pg)["record"] == 101 and pg.get_by_test_id("record-select").locator("option").count() == 2
    assert trace_pixels(pg, "II") > 50
    context.close()
    assert not errors, errors


def test_run_records_choose_waves_and_say_why_a_record_fell_back():
    """viewer_records (the viewer rule's path): waves where a record was explained on waves, bins with
    the explain stage's fallback reason where it was not delineated, mV calibration passed through."""
    from ptbxl_xai.data.ptbxl import LEADS as PTBXL_LEADS
    from ptbxl_xai.report.render import viewer_records

    def long_format(values, ecg_id, labels, method, kind):
        """The explain stage's attribution rows: ecg_id, label, method, feature_space, lead, feature, bin, value."""
        n_labels, leads, n = values.shape
        names = list(SEGMENTS) if kind == "waves" else [f"bin{b:02d}" for b in range(n)]
        return pd.DataFrame(
            dict(
                ecg_id=ecg_id,
                label=np.repeat(labels, leads * n),
                method=method,
                feature_space=kind,
                lead=np.tile(np.repeat(PTBXL_LEADS, n), n_labels),
                feature=np.tile(names, n_labels * leads),
                bin=np.tile(np.arange(n), n_labels * leads),
                value=values.ravel(),
            )
        )

    wave = wave_record()
    n_bins = 4
    rng = np.random.default_rng(0)
    waves_values = rng.normal(size=(2, 12, len(SEGMENTS)))
    frames = [
        long_format(waves_values, 404, ["MI", "NORM"], "shap", "waves"),
        long_format(rng.normal(size=(2, 12, n_bins)), 404, ["MI", "NORM"], "shap", "bins"),
        long_format(rng.normal(size=(1, 12, n_bins)), 505, ["CD"], "lime", "bins"),
    ]
    attributions = pd.concat(frames, ignore_index=True)
    x = np.stack([np.asarray(wave["signal"]), np.asarray(fake_ecg(505))]).astype(np.float32)
    ids = np.array([404, 505])
    pred = {
        "ecg_id": ids,
        "prob": rng.uniform(size=(2, len(LABELS))),
        "y_true": np.zeros((2, len(LABELS)), int),
        "label_names": LABELS,
    }
    beats = pd.DataFrame(fake_beats(), columns=list(FIDUCIALS)).assign(ecg_id=404)
    scale = np.stack([wave["lead_scale"], np.ones(12)])
    offset = np.stack([wave["lead_offset"], np.zeros(12)])
    records = viewer_records(
        pred, np.full(len(LABELS), 0.5), attributions, x, ids, FS, n_bins, "z-score",
        lead_scale=scale, lead_offset=offset, beats=beats, feature_kind="waves",
        method_flags={"shap": "passed"},
    )  # fmt: skip
    first, second = (validate_record(r, i) for i, r in enumerate(records))
    assert first["features"]["kind"] == "waves" and first["display_units"] == "mV"
    np.testing.assert_allclose(first["attributions"]["shap"]["MI"], waves_values[0], rtol=5e-4)
    assert first["median_beat"]["n_beats"] == 11 and first["method_flags"] == {"shap": "passed"}
    assert second["features"]["kind"] == "bins" and second["n_bins"] == n_bins
    assert second["features"]["notes"] == ["fell back to 4 time bins per lead: no delineation for this record"]
    assert second["beats"] == [] and second["median_beat"] is None
    assert set(second["attributions"]) == {"lime"}
    # the run asked for bins: waves rows are not shown even where they exist
    as_bins = viewer_records(pred, np.full(len(LABELS), 0.5), attributions, x, ids, FS, n_bins, feature_kind="bins")
    assert validate_record(as_bins[0])["features"]["kind"] == "bins"


def test_lead_calibration_read_from_the_signals_parquet(tmp_path):
    """mV calibration per record from the parts' lead_scale/lead_offset columns; None for older parts."""
    import pyarrow.parquet as pq

    from ptbxl_xai.data.parquet_io import lead_calibration, write_part

    x = np.zeros((3, 12, 10), np.float32)
    scale = np.arange(36, dtype=np.float32).reshape(3, 12) + 1
    part = tmp_path / "fold=10" / "signals-00000.parquet"
    part.parent.mkdir()
    write_part(part, [5, 6, 7], [1, 2, 3], [10] * 3, x, {"sampling_rate": 100}, lead_scale=scale, lead_offset=-scale)
    got_scale, got_offset = lead_calibration(tmp_path, [10], [7, 5])
    np.testing.assert_array_equal(got_scale, scale[[2, 0]])
    np.testing.assert_array_equal(got_offset, -scale[[2, 0]])
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["lead_scale", "lead_offset"]), part)  # a part written before them
    assert lead_calibration(tmp_path, [10], [6]) is None


def counterfactual_record(ecg_id: int = 606) -> dict:
    """wave_record with an answer of api/counterfactual for MI: V2's ST made normal, its median beat 0.3 mV lower
    there; HYP's record could not be delineated (the reason is what the page shows)."""
    record = wave_record(ecg_id)
    median = np.array(validate_record(record)["median_beat"]["signal"])
    lowered = median.copy()
    lowered[LEADS.index("V2")] -= 0.3
    record["counterfactuals"] = {
        "MI": {
            "available": True,
            "predicted": True,
            "segments": {
                "valid": True,
                "sentence": "P(MI) 0.81 -> 0.22 if V2:ST were normal (1 of 72 features)",
                "changed": ["V2:ST"],
                "p_after": 0.22,
            },  # fmt: skip
            "edits": [
                {"kind": "st_shift", "valid": True, "sentence": "P(MI) 0.81 -> 0.40 if ST -0.15 mV in anterior"},
                {"kind": "pr_duration", "valid": False, "sentence": "P(MI) 0.81: no pr_duration edit flips it"},
            ],
            "overlay": {"counterfactual": lowered.tolist(), "original": median.tolist()},
        },
        "HYP": {"available": False, "reason": "no counterfactual: it changes wave segments, and no beats"},
    }
    return record


def test_counterfactual_contract():
    clean = validate_record(counterfactual_record())["counterfactuals"]
    assert clean["MI"]["segments"]["changed"] == ["V2:ST"] and len(clean["MI"]["overlay"]["counterfactual"]) == 12
    assert clean["HYP"] == {"available": False, "reason": "no counterfactual: it changes wave segments, and no beats"}
    for mutate, problem in (
        (lambda r: r["counterfactuals"].update(XYZ=r["counterfactuals"]["HYP"]), "counterfactuals.XYZ"),
        (lambda r: r["counterfactuals"]["MI"]["overlay"].update(counterfactual=[[0.0] * 5] * 12), "overlay"),
        (lambda r: r["counterfactuals"]["MI"]["segments"].update(changed=["V2:QT"]), "segments.changed"),
        (lambda r: r["counterfactuals"]["MI"].update(available="yes"), "available"),
    ):
        record = counterfactual_record()
        mutate(record)
        with pytest.raises(ValueError, match=re.escape(problem)):
            validate_record(record)


def test_the_counterfactual_is_drawn_on_the_median_beat_with_its_sentences(browser, tmp_path):
    out = render_viewer([counterfactual_record()], tmp_path / "cf", title="counterfactual (test)")
    context = browser.new_context(viewport={"width": 1600, "height": 1100}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.goto(out.as_uri())
    pg.wait_for_selector("html[data-ready=true]")
    choose(pg, "overlay-select", "none")
    pg.evaluate("() => window.ECGViewer.selectLabel('MI')")
    note = pg.get_by_test_id("counterfactual-note")
    assert note.is_visible() and "P(MI) 0.81 -> 0.22 if V2:ST were normal" in note.inner_text()
    assert "Or: P(MI) 0.81 -> 0.40 if ST -0.15 mV in anterior." in note.inner_text()
    assert "No pr_duration edit of the grid flips it." in note.inner_text()
    med = geometry(pg)["median"]
    vermillion = """([x, y, w, h]) => {
      const d = document.getElementById('median').getContext('2d').getImageData(x, y, w, h).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 190 && d[i + 1] > 70 && d[i + 1] < 120 && d[i + 2] < 40) n++;
      return n;
    }"""
    v1, v2 = (next(c for c in med["cells"] if c["lead"] == name) for name in ("V1", "V2"))
    count = [pg.evaluate(vermillion, [int(c["x"]), int(c["y"]), int(c["w"]), int(c["h"])]) for c in (v2, v1)]
    assert count[0] > 50 and count[1] == 0, count  # drawn in the lead it changed, nowhere else
    rows = list(csv.DictReader(io.StringIO(pg.evaluate("() => window.ECGViewer.attributionsCsv()"))))
    made_normal = [
        (r["lead"], r["feature"]) for r in rows if r["method"] == "counterfactual" and r["attribution"] == "1"
    ]
    assert made_normal == [("V2", "ST")]
    pg.evaluate("() => window.ECGViewer.selectLabel('HYP')")
    assert "no counterfactual: it changes wave segments, and no beats" in note.inner_text()
    context.close()
    assert not errors, errors


def test_known_answer_flags_are_shown_and_a_failed_method_is_marked(browser, tmp_path):
    record = wave_record(707)
    record["known_answer_flags"] = {
        "shap": "passed: on the planted causes (hybrid, waves, normal_template), 0.85-0.94 of its attribution",
        "attention": "failed: on the planted causes (hybrid, waves, normal_template), 0.12 of its attribution in "
        "the STE mask, no better than the region's 0.14",
    }
    assert validate_record(record)["known_answer_flags"] == record["known_answer_flags"]
    bad = copy.deepcopy(record)
    bad["known_answer_flags"]["lime"] = "maybe"
    with pytest.raises(ValueError, match=re.escape("known_answer_flags.lime")):
        validate_record(bad)
    out = render_viewer([record], tmp_path / "ka", title="known answer (test)")
    context = browser.new_context(viewport={"width": 1600, "height": 1100}, device_scale_factor=1)
    pg = context.new_page()
    pg.goto(out.as_uri())
    pg.wait_for_selector("html[data-ready=true]")
    assert pg.get_by_test_id("known-answer-flag-shap").get_attribute("data-status") == "passed"
    assert pg.get_by_test_id("known-answer-flag-attention").get_attribute("data-status") == "failed"
    option = pg.locator('[data-testid="overlay-select"] option[value="attention"]')
    assert option.inner_text() == "Attention (failed known-answer test)"  # its sanity flag is only a caution
    choose(pg, "overlay-select", "attention")
    warning = pg.get_by_test_id("known-answer-warning").inner_text()
    assert "Attention failed the known-answer test (on the planted causes" in warning and "STE mask" in warning
    choose(pg, "overlay-select", "shap")
    assert pg.get_by_test_id("known-answer-warning").count() == 0
    context.close()
