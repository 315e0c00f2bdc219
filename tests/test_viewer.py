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
import pytest

from ecgxai.report.viewer import METHODS, render_viewer, validate_record

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


RECORDS = [make_record(101), make_record(202, units="z-score"), make_record(303, methods=("shap", "attention"))]


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
    assert out.stat().st_size < 450_000  # 3 records of 12 x 1000 samples, 4 significant digits


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
        "ecg_id,label,probability,threshold,predicted,true,method,lead,bin,t_start_s,t_end_s,attribution"
    )
    assert len(rows) == 12 * N_BINS * len(METHODS)
    assert {(r["method"], r["lead"], r["bin"]) for r in rows} == {
        (m, lead, str(b)) for m in METHODS for lead in LEADS for b in range(N_BINS)
    }
    lead, b = hot_spot(101, "MI", "lime")
    hot = next(r for r in rows if r["method"] == "lime" and r["lead"] == LEADS[lead] and r["bin"] == str(b))
    assert float(hot["attribution"]) == -1.0 and float(hot["t_start_s"]) == b * SECONDS / N_BINS
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
