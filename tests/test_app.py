"""The live app (`ecgxai serve`): API through FastAPI's TestClient, concurrency and the page in Chromium.

One small run is built once for the module with the package's own functions (synthetic PTB-XL,
preprocess, two training epochs): no Snakemake, about half a minute. The browser test needs the
Debian `chromium` package and playwright, as tests/test_viewer.py; its screenshot goes to
tests/artifacts/app/ (and to docs/app.png, the README's, with ECGXAI_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, ecg_like, write_record

from ptbxl_xai.app.protocol import header_deadline_protocol
from ptbxl_xai.config import SPLITS, FilterSettings
from ptbxl_xai.data.parquet_io import load_fold_arrays, load_parquet_records
from ptbxl_xai.data.preprocess import preprocess
from ptbxl_xai.data.ptbxl import record_path
from ptbxl_xai.data.synthetic import generate_ptbxl
from ptbxl_xai.evaluation.thresholds import tune_thresholds
from ptbxl_xai.explain.spaces.attention import attention_to_space
from ptbxl_xai.explain.spaces.features import FIDUCIALS, SEGMENTS, bin_space
from ptbxl_xai.model.checkpoint import save_checkpoint
from ptbxl_xai.model.hybrid import model_from_config
from ptbxl_xai.model.training import TrainConfig, predict, train_model

RUN = "live"
ARTIFACTS = REPO / "tests" / "artifacts" / "app"
CHROMIUM = Path("/usr/bin/chromium")
# The quick synthetic configuration, with an even smaller explanation budget: tests check behaviour.
# Explanations in threads of the test process (monkeypatchable); the worker processes of
# `serve.explain_process` have their own test.
APP_CONFIG = {
    "serve": {
        "explain_process": False,
        "predict_process": False,
        "explain": {"shap": {"npermutations": 1}, "lime": {"num_samples": 100}},
    }
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A workflow folder with results/ of one trained run `live` (superdiagnostic labels)."""
    wd = tmp_path_factory.mktemp("served")
    ptbxl = generate_ptbxl(wd / "ptbxl", 150, seed=0, rates=(100, 500))
    data = wd / "results" / "data"
    settings = FilterSettings()
    preprocess(ptbxl, data / "100hz", data / "labels.parquet", data / "quality.tsv", settings, progress=False)
    x_tr, y_tr, _, names = load_fold_arrays(data / "100hz", data / "labels.parquet", SPLITS["train"], "superdiagnostic")
    x_va, y_va, _, _ = load_fold_arrays(data / "100hz", data / "labels.parquet", SPLITS["val"], "superdiagnostic")
    hparams = yaml.safe_load((REPO / "config.yaml").read_text())["model"]
    torch_cfg = TrainConfig(epochs=2, device="cpu", patience=None)
    model, _ = train_model(model_from_config(hparams, len(names)), x_tr, y_tr, x_va, y_va, torch_cfg, progress=False)
    probs, _ = predict(model, x_va, device="cpu")
    run_dir = wd / "results" / "models" / RUN
    save_checkpoint(run_dir / "model.pt", model, hparams, names)
    thresholds = dict(zip(names, map(float, tune_thresholds(y_va, probs))))
    (run_dir / "thresholds.json").write_text(
        json.dumps({"label_set": "superdiagnostic", "tuned_on_folds": [9], "thresholds": thresholds})
    )
    (wd / "app.yaml").write_text(yaml.safe_dump(APP_CONFIG))
    return wd


@pytest.fixture(scope="module")
def config(workdir) -> dict:
    from ptbxl_xai.app.settings import load_config

    return load_config([REPO / "config.yaml", REPO / "tests" / "config" / "synthetic.yaml", workdir / "app.yaml"])


@pytest.fixture(scope="module")
def service(workdir, config):
    from ptbxl_xai.app.service import RunService, set_torch_threads

    set_torch_threads(1)
    return RunService(workdir / "results", RUN, config)


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("requests")


HEADER_TIMEOUT_S = 2.0  # serve.header_timeout_s of the test server, short so the slowloris test is quick
LOCAL = "http://127.0.0.1"  # the bound address: the Host the server answers to


def make_app(service, config, tmp_root, warm=True, wait_ready=True, **overrides):
    """The app, by default ready when its TestClient is entered (start-up finished in its lifespan)."""
    from ptbxl_xai.app.server import create_app
    from ptbxl_xai.app.settings import ServeSettings

    settings = ServeSettings.from_config(config["serve"], **overrides)
    return create_app(service, settings, tmp_root=tmp_root, warm=warm, wait_ready=wait_ready)


@pytest.fixture(scope="module")
def client(service, config, tmp_root):
    from fastapi.testclient import TestClient

    with TestClient(make_app(service, config, tmp_root), base_url=LOCAL) as c:
        yield c


def record_files(workdir, ecg_id: int, rate: int = 100) -> tuple[Path, Path]:
    hea = workdir / "ptbxl" / (record_path(ecg_id, rate) + ".hea")
    return hea, hea.with_suffix(".dat")


def first_test_id(service) -> int:
    return int(service.test_ids[0])


def upload(hea: Path, dat: Path | None = None) -> dict:
    files = {"hea": (hea.name, hea.read_bytes())}
    return files if dat is None else {**files, "dat": (dat.name, dat.read_bytes())}


def zipped(*files: Path, extra: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"record/{f.name}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# API
# ------------------------------------------------------------------------------------------------


def test_health_names_the_run_and_its_labels(client, service):
    body = client.get("/api/health").json()
    assert body["status"] == "ready" and body["run"] == RUN and body["startup_seconds"] >= 0
    assert body["labels"] == service.label_names == ["CD", "HYP", "MI", "NORM", "STTC"]


def test_predict_an_uploaded_record_as_the_workflow_predicts_it(client, service, workdir):
    """The upload goes through the workflow's preprocessing: same probabilities as the test fold's Parquet."""
    ecg_id = first_test_id(service)
    res = client.post("/api/predict", files=upload(*record_files(workdir, ecg_id)))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["sampling_rate"] == 100 and body["notes"] == [] and body["run"] == RUN
    x, ids, _ = load_parquet_records(workdir / "results" / "data" / "100hz", SPLITS["test"])
    expected, _ = predict(service.model, x[ids == ecg_id], device="cpu")
    got = np.array([lab["probability"] for lab in body["labels"]])
    np.testing.assert_allclose(got, expected[0], atol=1e-5)
    for lab, thr in zip(body["labels"], service.thresholds):
        assert lab["threshold"] == pytest.approx(thr)
        assert lab["predicted"] == (lab["probability"] >= lab["threshold"])
    attention = np.array(body["attention"]["values"])
    assert attention.shape == (12, service.settings.n_bins) and body["attention"]["feature_space"] == "bins"
    # mapped onto the bins as the explain stage maps it: the mean weight of the steps covering each bin
    _, steps = predict(service.model, x[ids == ecg_id], device="cpu")
    T = x.shape[-1]
    mapped = attention_to_space(steps[0], service.model.step_to_sample_edges(T), bin_space(T, service.settings.n_bins))
    np.testing.assert_allclose(attention, np.broadcast_to(mapped, attention.shape), atol=1e-6)
    assert "record" not in body  # the signal only when asked for (include_signal)


def test_zip_and_test_record_give_the_same_answer(client, service, workdir):
    ecg_id = first_test_id(service)
    hea, dat = record_files(workdir, ecg_id)
    by_files = client.post("/api/predict", files=upload(hea, dat)).json()
    by_zip = client.post("/api/predict", files={"zip": ("rec.zip", zipped(hea, dat, extra={"__MACOSX/._x": b""}))})
    by_id = client.post("/api/predict", data={"ecg_id": str(ecg_id), "include_signal": "true"}, files={})
    assert by_zip.status_code == 200 and by_id.status_code == 200, by_zip.text + by_id.text
    assert by_zip.json()["labels"] == by_files["labels"]
    test = by_id.json()
    assert [lab["probability"] for lab in test["labels"]] == pytest.approx(
        [lab["probability"] for lab in by_files["labels"]], abs=1e-5
    )
    assert all("true" in lab for lab in test["labels"])  # reference labels of a test record
    record = test["record"]  # the viewer's record contract, ready to draw
    assert np.array(record["signal"]).shape == (12, 1000) and record["units"] == "z-score"
    assert set(record["attributions"]) == {"attention"}


def test_a_500_hz_record_is_resampled_with_a_note(client, service, workdir):
    res = client.post("/api/predict", files=upload(*record_files(workdir, first_test_id(service), rate=500)))
    assert res.status_code == 200, res.text
    assert res.json()["notes"] == ["resampled from 500 Hz to 100 Hz (the model was trained at 100 Hz)"]


def test_explain_returns_shap_and_lime_per_feature_with_the_additivity_error(client, service, workdir):
    files = upload(*record_files(workdir, first_test_id(service)))
    res = client.post("/api/explain", files=files, data={"label": "NORM"})
    assert res.status_code == 200, res.text
    body = res.json()
    # the run explains on waves (config explain.features): the upload is delineated as the workflow does it
    assert body["label"] == "NORM" and body["feature_space"] == "waves"
    assert body["features"] == list(SEGMENTS)
    beats = np.array(body["beats"]["samples"])
    assert beats.shape[1] == len(FIDUCIALS) and len(beats) >= 5  # ~10 synthetic beats in 10 s
    shap_values, lime_values = np.array(body["shap"]["values"]), np.array(body["lime"]["values"])
    assert shap_values.shape == lime_values.shape == (12, len(SEGMENTS))
    assert np.abs(shap_values).sum() > 0 and np.abs(lime_values).sum() > 0
    # Permutation SHAP is exact in its budget: the attributions add up to f(x) - f(background).
    shap = body["shap"]
    assert shap["additivity_error"] < 1e-5
    assert shap_values.sum() + shap["base"] == pytest.approx(shap["prediction"], abs=1e-5)
    predicted = client.post("/api/predict", files=files).json()
    norm = next(lab for lab in predicted["labels"] if lab["name"] == "NORM")
    assert shap["prediction"] == pytest.approx(norm["probability"], abs=1e-5)
    assert body["lime"]["num_samples"] == 100 and body["shap"]["npermutations"] == 1
    again = client.post("/api/explain", files=files, data={"label": "NORM"}).json()
    assert again["shap"]["values"] == body["shap"]["values"]  # seeded: the same answer every time


def test_app_checks_and_explain_stage_give_the_same_shap_for_a_record(workdir, config):
    """One loader (`TrainedRun`) and one record seed: the app, the explain stage and the checks give a record
    the same SHAP values, whatever the record's position among the records explained with it."""
    import copy
    import dataclasses

    from ptbxl_xai.app.service import RunService
    from ptbxl_xai.data.ptbxl import LEADS
    from ptbxl_xai.explain.methods.explain_records import explain_maps
    from ptbxl_xai.explain.methods.settings import record_seed
    from ptbxl_xai.stages.checks import check_config
    from ptbxl_xai.trained_run import TrainedRun

    cfg = copy.deepcopy(config)
    cfg["explain"].update(features="bins", compare_features=False, background="zero")
    cfg["serve"]["explain"] = {}  # the workflow's budget, so that the three paths can be compared
    service = RunService(workdir / "results", RUN, cfg)
    ids = [int(e) for e in service.test_ids[:3]]
    eid, label = ids[-1], 1
    app = np.array(service.explain(service.test_record(eid), label)["shap"]["values"])

    run = TrainedRun.from_results(workdir / "results", RUN, cfg)
    x, _ = run.test_signals(ids)  # the record third: its seed comes from its ecg_id, not its position
    stage_cfg = {**cfg["explain"], "faithfulness": {"enabled": False}}
    stage_cfg["shap"] = {**stage_cfg["shap"], "gradient": False}
    expl = run.explain(x, [[label]] * len(ids), ids, stage_cfg, progress=False)
    rows = expl.attributions[(expl.attributions.method == "shap") & (expl.attributions.ecg_id == eid)]
    stage = rows.pivot(index="lead", columns="bin", values="value").reindex(list(LEADS)).to_numpy()

    checks = dataclasses.replace(check_config(cfg["checks"], cfg["explain"], ["zero"]), methods=("shap",))
    space = bin_space(x.shape[-1], run.n_bins)
    maps = explain_maps(
        run.model, x[-1], [label], space, {"zero": np.zeros_like(x[-1])}, checks, record_seed(checks.seed, eid)
    )
    from_checks = maps[("shap", "zero")].reshape(len(LEADS), run.n_bins)

    assert app.shape == (len(LEADS), run.n_bins) and np.abs(app).sum() > 0
    np.testing.assert_allclose(stage, app, atol=1e-6)
    np.testing.assert_allclose(from_checks, app, atol=1e-6)

    # so the checks reuse the explain stage's SHAP and LIME of a record instead of computing them again, for
    # any subset of the labels it explained (one set of coalitions and LIME samples serves every label)
    from ptbxl_xai.explain.methods.explain_records import Explained

    both = run.explain(x[-1:], [[0, label]], [eid], stage_cfg, progress=False)
    checks = dataclasses.replace(checks, methods=("shap", "lime"))
    fresh = explain_maps(
        run.model, x[-1], [label], space, {"zero": np.zeros_like(x[-1])}, checks, record_seed(checks.seed, eid)
    )
    explained = Explained(both.attributions, "zero")
    reused = explained.maps(eid, [label], run.label_names, space)
    assert set(reused) == {("shap", "zero"), ("lime", "zero")} and explained.reused == 2
    for key, values in reused.items():
        np.testing.assert_allclose(values, fresh[key], atol=1e-9)
    assert not explained.maps(eid, [2], run.label_names, space)  # a label it did not explain: computed afresh


def test_a_record_that_cannot_be_delineated_is_explained_on_time_bins_with_the_reason(service):
    from ptbxl_xai.app.service import Record

    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal((12, 1000))).astype(np.float32)  # no beats to find
    rec = Record(noise, 0, "noise", [])
    page = service.predict(rec, include_signal=True)
    assert page["attention"]["feature_space"] == "bins" and page["record"]["features"]["kind"] == "bins"
    assert any("time bins" in note for note in page["notes"]), page["notes"]
    body = service.explain(Record(noise, 0, "noise", []), 0)
    assert body["feature_space"] == "bins" and np.array(body["shap"]["values"]).shape == (12, service.settings.n_bins)
    assert any("time bins" in note for note in body["notes"]) and "beats" not in body


def test_the_page_record_and_its_explanation_share_the_wave_space(service, workdir):
    hea, _ = record_files(workdir, first_test_id(service))
    page = service.predict(service.upload_record(hea, hea.name), include_signal=True)
    record = page["record"]
    assert record["features"]["kind"] == "waves" and record["features"]["segment_names"] == list(SEGMENTS)
    assert page["attention"]["features"] == list(SEGMENTS)
    assert len(record["beats"]) >= 5 and record["median_beat"] is not None  # bands, fiducials, median beat
    body = service.explain(service.upload_record(hea, hea.name), 0)
    assert body["features"] == record["features"]["segment_names"]
    assert body["beats"]["samples"] == np.asarray(record["beats"]).tolist()


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/health", "/api/predict", "/api/explain", "/api/counterfactual"} <= set(spec["paths"])
    form = spec["paths"]["/api/explain"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"hea", "dat", "zip", "label"} <= set(form["properties"])
    docs = client.get("/docs")  # Swagger UI from this server's files: nothing from a CDN, no inline script
    assert (
        docs.status_code == 200 and "unsafe-inline" not in docs.headers["content-security-policy"].split("style-src")[0]
    )
    assert "http" not in docs.text and "<script>" not in docs.text
    for src in re.findall(r'(?:src|href)="([^"]+)"', docs.text):
        assert client.get(src).status_code == 200, src
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN: switched off


def called_record(service) -> tuple[int, str]:
    """A test record and an abnormal label (not NORM) that the run calls positive."""
    for ecg_id in service.test_ids:
        labels = service.predict(service.test_record(int(ecg_id)))["labels"]
        called = [lab["name"] for lab in labels if lab["predicted"] and lab["name"] != "NORM"]
        if called:
            return int(ecg_id), called[0]
    pytest.skip("the 2-epoch model calls no abnormal label on any test record")


def test_counterfactual_answers_what_would_make_a_called_label_normal(client, service):
    ecg_id, label = called_record(service)
    res = client.post("/api/counterfactual", data={"ecg_id": str(ecg_id), "label": label})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["available"] and body["predicted"] and body["label"] == label
    predicted = client.post("/api/predict", data={"ecg_id": str(ecg_id)}).json()
    lab = next(x for x in predicted["labels"] if x["name"] == label)
    assert body["probability"] == pytest.approx(lab["probability"], abs=1e-5) and body["threshold"] == lab["threshold"]
    seg = body["segments"]
    assert seg["n_features"] == 12 * len(SEGMENTS) and seg["sentence"].startswith(f"P({label})")
    if seg["valid"]:
        assert seg["p_after"] < body["threshold"] and 1 <= len(seg["changed"]) <= 12
        assert all(f.split(":")[1] in SEGMENTS for f in seg["changed"])
        overlay = body["overlay"]
        original, counterfactual = np.array(overlay["original"]), np.array(overlay["counterfactual"])
        assert original.shape == counterfactual.shape and original.shape[0] == 12
        assert np.abs(original - counterfactual).max() > 0  # the segments made normal differ
    else:
        assert seg["reason"]  # why not: a cap reached, or the record equals its normal version
    assert {e["kind"] for e in body["edits"]} == {"st_shift", "t_scale", "qrs_scale", "qrs_duration", "pr_duration"}
    for e in body["edits"]:
        assert (e["valid"] and e["p_after"] < body["threshold"] and e["edit"]) or (not e["valid"] and e["reason"])
    again = client.post("/api/counterfactual", data={"ecg_id": str(ecg_id), "label": label}).json()
    assert again["segments"] == seg and again["edits"] == body["edits"]  # deterministic
    not_called = next((x["name"] for x in predicted["labels"] if not x["predicted"] and x["name"] != "NORM"), None)
    if not_called:
        other = client.post("/api/counterfactual", data={"ecg_id": str(ecg_id), "label": not_called}).json()
        assert not other["predicted"] and "nothing to undo" in other["segments"]["sentence"]
    norm = client.post("/api/counterfactual", data={"ecg_id": str(ecg_id), "label": "NORM"}).json()
    assert norm["available"] is False and "NORM is the normal class" in norm["reason"]


def test_a_record_without_delineation_has_no_counterfactual_and_says_why(service):
    from ptbxl_xai.app.service import Record

    noise = (0.01 * np.random.default_rng(0).standard_normal((12, 1000))).astype(np.float32)
    body = service.counterfactual(Record(noise, 0, "noise", []), 0)
    assert body["available"] is False and body["reason"].startswith("no counterfactual: it changes wave segments")
    assert "segments" not in body and "overlay" not in body


def test_the_page_reuses_the_viewer_and_opens_on_a_test_record(client, service):
    from importlib import resources

    res = client.get("/")
    page = res.text
    viewer = resources.files("ptbxl_xai.report.viewer")
    # the viewer's own script and stylesheet, linked (not copies that could drift, not inlined)
    assert 'src="assets/viewer.js"' in page and 'href="assets/viewer.css"' in page
    assert client.get("/assets/viewer.js").text == viewer.joinpath("viewer.js").read_text()
    assert client.get("/assets/viewer.css").text == viewer.joinpath("viewer.css").read_text()
    assert 'src="assets/app.js"' in page and client.get("/assets/app.js").status_code == 200
    assert client.get("/assets/template.html").status_code == 404  # only the listed files are assets
    # no inline script or style may run: every <script> has a src or is a JSON data block, no <style>
    policy = res.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts), scripts
    assert "<style" not in page and "unsafe-inline" not in page


# ------------------------------------------------------------------------------------------------
# bad input: a 4xx JSON error that says what is wrong; the server keeps serving and keeps nothing
# ------------------------------------------------------------------------------------------------


def header_text(workdir, ecg_id) -> str:
    return record_files(workdir, ecg_id)[0].read_text()


def bad_uploads(workdir, ecg_id, tmp: Path) -> dict:
    """name -> (request kwargs, expected status, text the error must contain)."""
    hea, dat = record_files(workdir, ecg_id)
    rng = np.random.default_rng(1)
    three = write_record(tmp, 1, 100, ecg_like(rng, 1000, 100, leads=3), names=["I", "II", "V1"])
    short = write_record(tmp, 2, 100, ecg_like(rng, 500, 100))
    three_hea, short_hea = tmp / (three + ".hea"), tmp / (short + ".hea")
    other_dat = record_files(workdir, next(i for i in range(1, 200) if i != ecg_id))[1]  # same size, other record
    text = header_text(workdir, ecg_id)
    first, rest = text.split("\n", 1)
    fields = first.split()

    def with_rate(rate: str) -> bytes:
        return (" ".join(fields[:2] + [rate] + fields[3:]) + "\n" + rest).encode()

    return {
        "nothing": (dict(files={"other": ("x.txt", b"x")}), 400, "unexpected file field `other`"),
        "no files": (dict(data={"label": "NORM"}, files={}), 400, "missing file `hea` and `dat`"),
        "header only": (dict(files={"hea": (hea.name, hea.read_bytes())}), 400, "missing file `dat`"),
        "not multipart": (dict(json={"hea": "x"}), 415, "multipart/form-data"),
        "unreadable header": (
            dict(files={"hea": ("x.hea", b"this is not a header\n"), "dat": ("x.dat", dat.read_bytes())}),
            422,
            "x.hea: unreadable WFDB header",
        ),
        "too few leads": (
            dict(files=upload(three_hea, three_hea.with_suffix(".dat"))),
            422,
            "the model needs the 12 standard leads",
        ),
        "too short": (dict(files=upload(short_hea, short_hea.with_suffix(".dat"))), 422, "at least 10 s needed"),
        "absurd rate": (
            dict(files={"hea": (hea.name, with_rate("0.4")), "dat": (dat.name, dat.read_bytes())}),
            422,
            "sampling rate 0.4 Hz is not a plausible ECG rate",
        ),
        "unparseable rate": (
            dict(files={"hea": (hea.name, with_rate("1e9")), "dat": (dat.name, dat.read_bytes())}),
            422,
            "sampling rate '1e9' is not a positive number",
        ),
        "truncated signal file": (
            dict(files={"hea": (hea.name, hea.read_bytes()), "dat": (dat.name, dat.read_bytes()[:1000])}),
            422,
            hea.name,
        ),
        "not a zip": (dict(files={"zip": ("rec.zip", b"PK but not really a zip")}), 400, "rec.zip: not a zip"),
        "zip without a header": (dict(files={"zip": ("rec.zip", zipped(dat))}), 400, "no .hea header"),
        "zip without the signal": (dict(files={"zip": ("rec.zip", zipped(hea))}), 400, "not in the zip"),
        "zip of two records": (
            dict(files={"zip": ("two.zip", zipped(hea, dat, three_hea, three_hea.with_suffix(".dat")))}),
            400,
            "zip one record at a time",
        ),
        "zip and files": (dict(files={**upload(hea, dat), "zip": ("r.zip", zipped(hea, dat))}), 400, "not both"),
        "zip of two records, one header": (
            dict(files={"zip": ("two.zip", zipped(hea, dat, other_dat))}),
            400,
            "holds several records",
        ),
        "zip with one name twice": (
            dict(files={"zip": ("dup.zip", zipped(hea, dat, extra={f"copy/{dat.name}": other_dat.read_bytes()}))}),
            400,
            f"two files named {dat.name}",
        ),
        "encrypted zip member": (dict(files={"zip": ("enc.zip", encrypted_zip(hea, dat))}), 400, "cannot be unpacked"),
        # the data must be the header's: same size, other content is refused, never explained under its name
        "another record's data": (
            dict(files={"hea": (hea.name, hea.read_bytes()), "dat": (dat.name, other_dat.read_bytes())}),
            422,
            f"{hea.name} does not match its data file {dat.name}: checksum of signal",
        ),
        "one sample changed": (
            dict(files={"hea": (hea.name, hea.read_bytes()), "dat": (dat.name, one_sample_changed(dat))}),
            422,
            "does not match its data file",
        ),
        "another record's data in a zip": (
            dict(files={"zip": ("swap.zip", zipped(hea, extra={f"record/{dat.name}": other_dat.read_bytes()}))}),
            422,
            "checksum of signal",
        ),
        "unknown test record": (dict(data={"ecg_id": "999999"}, files={}), 404, "not a test record"),
        "ecg_id not a number": (dict(data={"ecg_id": "12; rm -rf"}, files={}), 400, "whole number"),
        "ecg_id superscript digit": (dict(data={"ecg_id": "\u00b2"}, files={}), 400, "whole number"),
        "ecg_id of 5000 digits": (dict(data={"ecg_id": "9" * 5000}, files={}), 400, "whole number"),
    }


def one_sample_changed(dat: Path) -> bytes:
    data = bytearray(dat.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one sample
    return bytes(data)


def encrypted_zip(*files: Path) -> bytes:
    """A zip whose members carry the encryption flag (zipfile cannot write encrypted members; the flag
    is what makes it ask for a password)."""
    raw = bytearray(zipped(*files))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers: general-purpose flags
        i = raw.find(sig)
        while i >= 0:
            raw[i + at] |= 0x01
            i = raw.find(sig, i + 4)
    return bytes(raw)


def test_every_bad_upload_gets_a_4xx_json_error_naming_the_problem(client, service, workdir, tmp_path, tmp_root):
    cases = bad_uploads(workdir, first_test_id(service), tmp_path)
    failures = []
    for name, (kwargs, status, text) in cases.items():
        for path in ("/api/predict", "/api/explain", "/api/counterfactual"):
            if path != "/api/predict" and "json" not in kwargs:  # a valid label: the record is what is wrong
                kwargs = {**kwargs, "data": {**kwargs.get("data", {}), "label": "NORM"}}
            res = client.post(path, **kwargs)
            error = res.json().get("error", "") if res.headers.get("content-type") == "application/json" else ""
            if res.status_code != status or text not in error:
                failures.append(f"{name} {path}: {res.status_code} {res.text[:300]}")
    assert not failures, "\n".join(failures)
    assert client.get("/api/health").json()["status"] == "ready"  # still serving
    assert list(tmp_root.iterdir()) == []  # every per-request folder removed, no upload kept


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str) -> bytes:
    """A multipart/form-data body from (field name, filename or None, content), nothing checked."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode("utf-8", "replace")
        out += content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _zip_of(members: list[tuple[str, bytes, bool]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content, deflate in members:
            # zipfile cuts a name at NUL (and then fails on an empty one), as it does when it reads one
            name = (name or "x").split("\x00", 1)[0] or "x"
            z.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buf.getvalue()


def test_no_request_body_gets_a_5xx(client, service, workdir, tmp_root, caplog):
    """Hypothesis over the HTTP layer: multipart bodies with any field names, filenames and values, record
    files cut, flipped or replaced, zip archives of any members, broken framing and content types. No
    answer is a 5xx, every refusal is JSON naming the problem, the server stays healthy, and each refusal is
    logged as one line, without a traceback."""
    import logging

    from hypothesis import HealthCheck, given, settings

    caplog.set_level(logging.INFO, logger="ptbxl_xai")
    from hypothesis import strategies as st

    hea, dat = record_files(workdir, first_test_id(service))
    real = {"hea": hea.read_bytes(), "dat": dat.read_bytes()}
    text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)

    @st.composite
    def file_content(draw):
        kind = draw(st.sampled_from(["hea", "dat", "random", "cut", "flip"]))
        if kind == "random":
            return draw(st.binary(max_size=2000))
        base = real[draw(st.sampled_from(["hea", "dat"]))] if kind in ("cut", "flip") else real[kind]
        if kind == "cut":
            return base[: draw(st.integers(0, len(base)))]
        if kind == "flip":
            raw = bytearray(base)
            for i in draw(st.lists(st.integers(0, len(raw) - 1), max_size=8)):
                raw[i] ^= draw(st.integers(1, 255))
            return bytes(raw)
        return base

    members = st.lists(st.tuples(text, file_content(), st.booleans()), max_size=4).map(_zip_of)
    part = st.one_of(
        st.tuples(st.sampled_from(["hea", "dat"]), st.one_of(st.none(), text), file_content()),
        st.tuples(st.just("zip"), st.one_of(st.none(), text), st.one_of(members, st.binary(max_size=500))),
        st.tuples(st.sampled_from(["label", "ecg_id", "include_signal"]), st.none(), text.map(str.encode)),
        st.tuples(text, st.one_of(st.none(), text), st.binary(max_size=200)),
    )
    content_types = st.sampled_from(["multipart/form-data; boundary={b}", "multipart/form-data", "text/plain",
                                     "multipart/form-data; boundary=other", "application/json"])  # fmt: skip

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        path=st.sampled_from(["/api/predict", "/api/explain", "/api/counterfactual"]),
        parts=st.lists(part, max_size=5),
        content_type=content_types,
        cut=st.one_of(st.none(), st.integers(0, 4000)),
    )
    def check(path, parts, content_type, cut):
        boundary = "ecgxaiFUZZ"
        body = _multipart(parts, boundary)
        body = body if cut is None else body[:cut]
        res = client.post(path, content=body, headers={"content-type": content_type.format(b=boundary)})
        assert res.status_code < 500, (res.status_code, res.text[:300])
        if res.status_code >= 400:
            assert res.headers["content-type"] == "application/json" and res.json()["error"], res.text[:300]

    check()
    assert client.get("/api/health").json()["status"] == "ready"
    assert list(tmp_root.iterdir()) == []  # no upload left behind
    refusals = [r for r in caplog.records if r.name == "ptbxl_xai.app.server" and " -> 4" in r.getMessage()]
    assert refusals, "client errors are logged"
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in refusals)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]  # no traceback at all
    assert not [r.getMessage() for r in refusals if "\n" in r.getMessage() or "Traceback" in r.getMessage()]


@pytest.mark.parametrize("path", ["/api/explain", "/api/counterfactual"])
def test_explain_and_counterfactual_need_a_known_label(client, service, workdir, path):
    files = upload(*record_files(workdir, first_test_id(service)))
    missing = client.post(path, files=files)
    unknown = client.post(path, files=files, data={"label": "XYZ"})
    assert missing.status_code == 400 and "missing form field `label`" in missing.json()["error"]
    assert unknown.status_code == 400 and "unknown label 'XYZ'" in unknown.json()["error"]


def test_worker_processes_answer_as_in_process(client, service, config, workdir, tmp_root):
    """serve.explain_process and serve.predict_process (the defaults): the same answers from worker
    processes (explanations at lower priority), and a record error raised there reaches the client as its 4xx."""
    import pickle

    from fastapi.testclient import TestClient

    from ptbxl_xai.app.service import RecordError

    hea, dat = record_files(workdir, first_test_id(service))
    files = upload(hea, dat)
    in_process = client.post("/api/explain", files=files, data={"label": "NORM"}).json()
    cf_in_process = client.post("/api/counterfactual", files=files, data={"label": "MI"}).json()
    predicted = client.post("/api/predict", files=files, data={"include_signal": "1"}).json()
    app = make_app(
        service,
        config,
        tmp_root,
        warm=False,
        wait_ready=False,
        explain_process=True,
        explain_nice=5,
        predict_process=True,
    )
    with TestClient(app, base_url=LOCAL) as c:
        # live at once, ready once the workers have loaded the run: model requests wait with 503 + Retry-After
        health = c.get("/api/health")
        assert health.status_code == 200 and health.json()["status"] == "starting", health.json()
        early = c.post("/api/predict", data={"ecg_id": str(first_test_id(service))})
        assert early.status_code == 503 and int(early.headers["Retry-After"]) > 0
        assert "the server is starting" in early.json()["error"]
        assert c.get("/api/ready").status_code == 503
        for _ in range(600):
            if c.get("/api/health").json()["status"] != "starting":
                break
            time.sleep(0.5)
        assert c.get("/api/health").json()["status"] == "ready" and c.get("/api/ready").status_code == 200
        assert c.get("/").status_code == 200
        pool = app.state.explain_pool
        assert pool is not None and pool.niceness() == min(19, os.nice(0) + 5)
        assert app.state.predict_pool.niceness() == os.nice(0)  # predictions keep the server's priority
        # the loaded run is frozen out of full GC passes (~190 ms each: a latency spike at random)
        assert app.state.predict_pool.frozen_objects() > 10_000 and pool.frozen_objects() > 10_000
        res = c.post("/api/explain", files=files, data={"label": "NORM"})
        assert res.status_code == 200, res.text
        cf = c.post("/api/counterfactual", files=files, data={"label": "MI"})
        assert cf.status_code == 200, cf.text
        same = {k: v for k, v in cf.json().items() if k != "seconds"}
        assert same == {k: v for k, v in cf_in_process.items() if k != "seconds"}  # the worker's answer, as in-process
        pred = c.post("/api/predict", files=files, data={"include_signal": "1"})
        assert pred.status_code == 200, pred.text
        by_id = c.post("/api/predict", data={"ecg_id": str(first_test_id(service))})
        assert by_id.status_code == 200 and by_id.json()["ecg_id"] == first_test_id(service)
        # a client gone while its explanation runs in the worker: dropped, and the worker is free again
        from ptbxl_xai.app.worker_pool import ClientGone

        async def gone():
            return True

        record = service.test_record(first_test_id(service))
        with pytest.raises(ClientGone):
            c.portal.call(pool.explain, record, 0, gone)
        assert pool.waiting == 0 and len(pool._free) == pool.workers
        after = c.post("/api/explain", files=files, data={"label": "NORM"}).json()
        assert after["shap"] == res.json()["shap"] and after["lime"] == res.json()["lime"]
        bad = c.post("/api/predict", files=upload(hea))  # raised in the worker, answered by the server
        assert bad.status_code == 400 and "missing file `dat`" in bad.json()["error"]
        assert c.get("/api/health").status_code == 200  # and it keeps serving
        # a worker that dies (killed, out of memory): that request gets a 503, a new worker the next ones
        os.kill(app.state.predict_pool.worker_pid(), signal.SIGKILL)
        lost = c.post("/api/predict", files=files)
        assert lost.status_code == 503 and "worker process stopped" in lost.json()["error"]
        again = c.post("/api/predict", files=files, data={"include_signal": "1"})
        assert again.status_code == 200 and again.json() == predicted
    body = res.json()
    assert body["shap"]["values"] == in_process["shap"]["values"] and body["features"] == in_process["features"]
    assert pred.json() == predicted
    assert app.state.explain_pool.closed and app.state.predict_pool.closed  # stopped with the app
    assert not list(Path(tmp_root).iterdir())  # the worker removed its upload folders
    err = pickle.loads(pickle.dumps(RecordError(422, "rec.hea: too short")))
    assert (err.status, err.message) == (422, "rec.hea: too short")


def test_a_failed_start_up_is_reported_not_hidden(service, config, tmp_root, monkeypatch):
    """Start-up fails (here: the page's first record cannot be prepared): the server stays up and says so,
    health `failed` with the error, model requests and the page 503 without Retry-After (waiting will not help)."""
    from fastapi.testclient import TestClient

    def broken(record):
        raise OSError("disk gone")

    monkeypatch.setattr(service, "page_record", broken)
    app = make_app(service, config, tmp_root, warm=False, wait_ready=False)
    with TestClient(app, base_url=LOCAL) as c:
        for _ in range(200):
            if (health := c.get("/api/health").json())["status"] != "starting":
                break
            time.sleep(0.05)
        assert health["status"] == "failed" and "OSError: disk gone" in health["error"], health
        answer = c.post("/api/predict", data={"ecg_id": str(first_test_id(service))})
        assert answer.status_code == 503 and "failed to start" in answer.json()["error"]
        assert "Retry-After" not in answer.headers
        page = c.get("/")
        assert page.status_code == 503 and "failed to start" in page.text and "refresh" not in page.text


def test_uploads_over_the_cap_are_refused_with_413(service, config, workdir, tmp_root):
    from fastapi.testclient import TestClient

    hea, dat = record_files(workdir, first_test_id(service), rate=500)  # 120 kB of signal
    with TestClient(make_app(service, config, tmp_root, warm=False, max_upload_mb=0.05), base_url=LOCAL) as small:
        direct = small.post("/api/predict", files=upload(hea, dat))
        # a zip that is small itself but unpacks past the cap
        bomb = zipped(hea, extra={dat.name: b"\0" * 200_000})
        unpacked = small.post("/api/predict", files={"zip": ("bomb.zip", bomb)})
        assert len(bomb) < 0.05 * 2**20
        ok = small.post("/api/predict", files=upload(*record_files(workdir, first_test_id(service))))
    for res in (direct, unpacked):
        assert res.status_code == 413 and "upload too large" in res.json()["error"], res.text
    assert ok.status_code == 200  # a record under the cap still goes through
    assert list(tmp_root.iterdir()) == []


def test_foreign_hosts_and_cross_origin_posts_are_refused(client, service, workdir, tmp_root, config):
    """DNS rebinding (a page's own domain pointed at 127.0.0.1) and other sites' forms do not reach the run."""
    from fastapi.testclient import TestClient

    files = upload(*record_files(workdir, first_test_id(service)))
    rebound = client.get("/api/health", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400 and "serve.allowed_hosts" in rebound.json()["error"], rebound.text
    foreign = client.post("/api/predict", files=files, headers={"Origin": "https://attacker.example"})
    assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"], foreign.text
    assert client.post("/api/predict", files=files, headers={"Origin": "null"}).status_code == 403
    # the page itself (same origin), localhost, and clients that send no Origin (curl, scripts) are served
    assert client.post("/api/predict", files=files, headers={"Origin": LOCAL}).status_code == 200
    assert client.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.post("/api/predict", files=files).status_code == 200
    # configured names and origins are served too
    app = make_app(
        service,
        config,
        tmp_root,
        warm=False,
        allowed_hosts=("ecg.example.org",),
        allowed_origins=("https://viewer.example.org",),
    )
    with TestClient(app, base_url="http://ecg.example.org") as named:
        res = named.post("/api/predict", files=files, headers={"Origin": "https://viewer.example.org"})
        assert res.status_code == 200, res.text


def test_uploads_beyond_the_servers_byte_budget_get_503_with_retry_after(service, config, workdir, tmp_root):
    """serve.max_buffered_mb bounds the bytes of all requests in flight; the budget is given back after each."""
    from fastapi.testclient import TestClient

    hea, dat = record_files(workdir, first_test_id(service), rate=500)  # 120 kB of signal
    small = upload(*record_files(workdir, first_test_id(service)))  # 24 kB
    with TestClient(make_app(service, config, tmp_root, warm=False, max_buffered_mb=0.05), base_url=LOCAL) as c:
        big = c.post("/api/predict", files=upload(hea, dat))
        assert big.status_code == 503 and "serve.max_buffered_mb" in big.json()["error"], big.text
        assert int(big.headers["Retry-After"]) > 0
        for _ in range(3):  # released after each request: repeated requests under the budget all pass
            assert c.post("/api/predict", files=small).status_code == 200
    assert list(tmp_root.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# a real server on 127.0.0.1: concurrency, the command line, the browser
# ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(service, config, tmp_root):
    """uvicorn serving the app on 127.0.0.1 in a thread of this process (shares the warmed-up service)."""
    import uvicorn

    app = make_app(service, config, tmp_root)
    port = free_port()
    http = header_deadline_protocol(HEADER_TIMEOUT_S)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # start-up (warm-up included) runs in the lifespan here: wait_ready
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(10)


def test_a_client_that_never_finishes_its_headers_gets_408_and_is_closed(server):
    """Slowloris: headers sent a byte at a time past the deadline; other clients are served meanwhile."""
    import httpx

    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        assert httpx.get(f"{url}/api/health", timeout=30).status_code == 200
        slow.settimeout(0.25)
        answer = b""
        while time.monotonic() - started < HEADER_TIMEOUT_S + 10:
            try:
                chunk = slow.recv(4096)
            except TimeoutError:
                slow.sendall(b"X")  # a byte at a time: trickling does not extend the deadline
                continue
            if not chunk:  # the server answered and closed
                break
            answer += chunk
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"serve.header_timeout_s" in answer
    assert HEADER_TIMEOUT_S * 0.9 <= waited < HEADER_TIMEOUT_S + 10
    with socket.create_connection(("127.0.0.1", port), timeout=30) as prompt:  # a complete request is not cut
        prompt.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        time.sleep(HEADER_TIMEOUT_S + 0.5)
        reply = b"".join(iter(lambda: prompt.recv(4096), b""))
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_a_running_explanation_does_not_block_predictions(server, service, workdir, monkeypatch):
    """An explain request held inside the model call; predictions from another client still complete."""
    import httpx

    url, _ = server
    started, release = threading.Event(), threading.Event()
    real = service.explain

    def held(*args):
        started.set()
        assert release.wait(60), "never released"
        return real(*args)

    monkeypatch.setattr(service, "explain", held)
    files = upload(*record_files(workdir, first_test_id(service)))
    result = {}
    explainer = threading.Thread(
        target=lambda: result.update(
            res=httpx.post(f"{url}/api/explain", files=files, data={"label": "MI"}, timeout=120)
        )
    )
    explainer.start()
    try:
        assert started.wait(60), "the explanation never started"
        for _ in range(3):
            res = httpx.post(f"{url}/api/predict", files=files, timeout=30)
            assert res.status_code == 200
        assert explainer.is_alive() and "res" not in result  # predictions answered while it ran
    finally:
        release.set()
        explainer.join(120)
    assert result["res"].status_code == 200 and result["res"].json()["label"] == "MI"


def test_an_explanation_whose_client_disconnects_is_stopped(server, service, workdir, monkeypatch):
    """The client gives up while its explanation runs: the model calls stop at the next batch, and the next
    client's explanation is served."""
    import httpx

    from ptbxl_xai.model.inference import CallsStopped

    url, _ = server
    batches, stopped = [], threading.Event()
    real = service.explain

    def slowed(record, label, should_stop=None):
        def slow_batch():  # each batch of model calls takes 0.3 s: the explanation outlasts its client
            time.sleep(0.3)
            batches.append(1)
            return should_stop()

        try:
            return real(record, label, slow_batch)
        except CallsStopped:
            stopped.set()
            raise

    monkeypatch.setattr(service, "explain", slowed)
    files = upload(*record_files(workdir, first_test_id(service)))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/api/explain", files=files, data={"label": "MI"}, timeout=1.5)
    assert stopped.wait(30), f"the explanation ran on after its client left ({len(batches)} batches)"
    monkeypatch.setattr(service, "explain", real)
    res = httpx.post(f"{url}/api/explain", files=files, data={"label": "MI"}, timeout=120)
    assert res.status_code == 200 and res.json()["label"] == "MI"


def test_many_concurrent_predictions_all_succeed(server, service, workdir):
    """16 clients at once: every answer 200 and the same (the model is shared by the worker threads)."""
    import httpx

    url, _ = server
    files = upload(*record_files(workdir, first_test_id(service)))
    answers, failures = [], []

    def client():
        with httpx.Client(base_url=url, timeout=120) as c:
            for _ in range(5):
                res = c.post("/api/predict", files=files)
                (answers if res.status_code == 200 else failures).append(res.text)

    threads = [threading.Thread(target=client) for _ in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not failures, failures[:3]
    assert len(answers) == 80 and len(set(answers)) == 1


def test_serve_command_refuses_an_unknown_run(workdir):
    res = subprocess.run(
        [sys.executable, "-m", "ptbxl_xai.cli", "serve", "--run", "nosuch", "--results", str(workdir / "results")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "no trained run 'nosuch'" in res.stderr and f"{RUN}" in res.stderr and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright Python package")
    from test_viewer import CHROMIUM_FLAGS

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


# Share of overlay-coloured (not white, not grid-pink, not trace) pixels on the ECG canvas.
OVERLAY_PIXELS_JS = """() => {
  const c = document.querySelector('[data-testid="ecg-canvas"]'), geo = window.viewerGeometry();
  const d = c.getContext('2d').getImageData(geo.plotX, 0, geo.plotW, geo.footerY).data;
  let blue = 0, red = 0, orange = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    n++;
    if (b > r + 30 && b > g) blue++;
    else if (r > 180 && g < 150 && b < 150) red++;
    else if (r - b > 60 && g - b > 20) orange++;   // attention's oranges, not the pink grid
  }
  return {blue: blue / n, red: red / n, orange: orange / n};
}"""


COUNTERFACTUAL_PIXELS_JS = """() => {
  const c = document.querySelector('[data-testid="median-canvas"]');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let hits = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 190 && d[i + 1] > 70 && d[i + 1] < 120 && d[i + 2] < 40) hits++;
  return hits / (d.length / 4);
}"""


def test_browser_upload_shows_predictions_then_the_overlays(browser, server, service, workdir):
    url, _ = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / ".gitignore").write_text("*\n")
    ecg_id = int(service.test_ids[-1])
    hea, dat = record_files(workdir, ecg_id)
    expected = service.predict(service.upload_record(hea, hea.name))

    context = browser.new_context(
        viewport={"width": 1500, "height": 1000}, device_scale_factor=1, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(120_000)  # waits for real explanations: generous on a loaded 2-core CI machine
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(url + "/")
    page.wait_for_selector("html[data-ready=true]")
    # the page opens on a test record; its explanation arrives by itself
    page.wait_for_function("() => window.liveApp.explained[0] && Object.keys(window.liveApp.explained[0]).length")

    page.set_input_files('[data-testid="file-input"]', [str(hea), str(dat)])
    page.wait_for_function("() => window.liveApp.sources.length === 2 && window.viewerState.recordIndex === 1")
    status = page.inner_text('[data-testid="live-status"]')
    assert f"your upload {hea.name} + {dat.name}" in status

    # predicted labels, as the page shows them, are the server's
    rows = page.eval_on_selector_all(
        "#label-rows tr", "rows => rows.map(r => [r.dataset.label, r.children[4].dataset.value])"
    )
    shown = sorted(label for label, predicted in rows if predicted == "1")
    assert shown == sorted(lab["name"] for lab in expected["labels"] if lab["predicted"])
    assert len(rows) == len(service.label_names)
    assert page.inner_text("#record-select option:checked") == f"Your ECG: {hea.name}"

    # attention first; then SHAP arrives for the shown label and becomes the overlay
    label = page.evaluate("() => window.viewerState.label")
    page.wait_for_function(
        "(label) => window.liveApp.explained[1][label] && window.viewerState.overlay === 'shap'", arg=label
    )
    shap = page.evaluate("(label) => window.ecgViewer.records[1].attributions.shap[label]", label)
    assert np.array(shap).shape == (12, len(SEGMENTS))  # P, PR, QRS, ST, T, TP per lead
    assert page.evaluate("() => window.ecgViewer.records[1].features.kind") == "waves"
    colours = page.evaluate(OVERLAY_PIXELS_JS)
    assert colours["blue"] + colours["red"] > 0.02, colours  # SHAP's diverging colours are on the ECG
    assert "SHAP for " + label in page.inner_text('[data-testid="legend"]')
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=False)
    if os.environ.get("ECGXAI_UPDATE_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / "app.png", REPO / "docs" / "app.png")

    # export as in the static viewer: the attributions the server sent, as CSV
    with page.expect_download() as download:
        page.click('[data-testid="export-csv"]')
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    methods = [row["method"] for row in rows]
    n_cells = 12 * len(SEGMENTS)
    assert methods.count("shap") == methods.count("lime") == methods.count("attention") == n_cells
    assert {row["label"] for row in rows} == {label}
    shap_export = [float(row["attribution"]) for row in rows if row["method"] == "shap"]
    np.testing.assert_allclose(shap_export, np.ravel(shap), rtol=1e-3, atol=1e-9)

    # what would make the most probable abnormal label normal: the sentence, and the counterfactual beat drawn
    # on the median beat (the label chosen in the table, as a user does)
    cf_label = max((lab for lab in expected["labels"] if lab["name"] != "NORM"), key=lambda lab: lab["probability"])
    cf_label = cf_label["name"]
    page.check(f'[data-testid="label-radio-{cf_label}"]')
    page.click('[data-testid="cf-button"]')
    page.wait_for_function("(label) => (window.ecgViewer.records[1].counterfactuals || {})[label]", arg=cf_label)
    cf = page.evaluate("(label) => window.ecgViewer.records[1].counterfactuals[label]", cf_label)
    note = page.inner_text('[data-testid="counterfactual-note"]')
    assert page.is_visible('[data-testid="counterfactual-note"]') and cf["available"], (note, cf)
    assert f"P({cf_label})" in note and cf["segments"]["sentence"] in note, note
    if cf["predicted"] and cf["segments"]["valid"]:
        assert page.evaluate(COUNTERFACTUAL_PIXELS_JS) > 0.001  # the vermillion trace and frames are drawn
    status = page.inner_text('[data-testid="cf-status"]')
    assert cf["segments"]["sentence"] in status, status
    with page.expect_download() as download:
        page.click('[data-testid="export-json"]')
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["counterfactuals"][cf_label] == cf  # the server's answer, as it came
    page.check(f'[data-testid="label-radio-{label}"]')  # back to the label explained above

    # the attention overlay of the same record, on request
    page.select_option('[data-testid="overlay-select"]', "attention")
    assert page.evaluate(OVERLAY_PIXELS_JS)["orange"] > 0.02

    # a bad upload: the error is shown, the page keeps working
    page.set_input_files('[data-testid="file-input"]', [str(hea)])
    page.wait_for_function("() => window.liveApp.errors.length > 0")
    assert "missing file `dat`" in page.inner_text('[data-testid="live-status"]')
    context.close()
    # the browser logs the refused upload's answer as a failed load; nothing else may go wrong
    errors = [e for e in errors if "status of 400 (Bad Request)" not in e]
    assert not errors, errors


def test_browser_api_docs_render_from_this_server_alone(browser, server):
    """/docs in Chromium: Swagger UI lists the endpoints, every request goes to this server, and its
    content policy blocks nothing the page needs (a violation is a console error)."""
    url, _ = server
    context = browser.new_context()
    page = context.new_page()
    errors, elsewhere = [], []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("request", lambda req: None if req.url.startswith(url) else elsewhere.append(req.url))
    page.goto(url + "/docs")
    page.wait_for_selector("#operations-default-api_predict_api_predict_post, .opblock-summary-path", timeout=60_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path || e.innerText)")
    context.close()
    assert {"/api/health", "/api/predict", "/api/explain"} <= {p.strip() for p in paths}, paths
    assert not elsewhere, elsewhere
    assert not errors, errors


def test_the_page_flags_methods_that_failed_the_sanity_or_the_known_answer_test(workdir, config):
    """With rule sanity's method_flags.tsv and rule known_answer's localisation.tsv in results/, the page's record
    carries both flags, as the workflow's viewer shows them."""
    from ptbxl_xai.app.service import RunService
    from ptbxl_xai.layout import Layout

    layout = Layout(str(workdir / "results"))
    sanity, known = Path(layout.checks(RUN, "method_flags.tsv")), Path(layout.known_answer("localisation.tsv"))
    sanity.parent.mkdir(parents=True, exist_ok=True)
    known.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"method": ["shap", "lime"], "flag": ["pass", "fail"], "note": ["", "Spearman 0.9"]}).to_csv(
        sanity, sep="\t", index=False
    )
    rows = [
        dict(architecture="hybrid", label=lab, meaningful=True, method=m, feature_space="waves",
             background=bg, model="trained", share=s, share_ci_low=s - 0.05, region_share=0.15)
        for m, s, bgs in (("shap", 0.9, ("zero", "normal_template")), ("attention", 0.12, ("-",)))
        for lab in ("STE", "TINV")
        for bg in bgs  # the run explains with zero here (no NORM template); attention masks nothing: "-"
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(known, sep="\t", index=False)
    try:
        service = RunService(workdir / "results", RUN, config)
        record = service.page_record(service.test_record(int(service.test_ids[0])))
    finally:
        sanity.unlink()
        known.unlink()
    assert record["method_flags"] == {"shap": "passed", "lime": "failed: Spearman 0.9"}
    flags = record["known_answer_flags"]
    assert flags["shap"].startswith("passed") and flags["attention"].startswith("failed")
    known.write_text("architecture\tlabel\nhybrid\n")  # a damaged table: no flags, and the server still starts
    try:
        damaged = RunService(workdir / "results", RUN, config)
    finally:
        known.unlink()
    assert damaged.known_answer_flags == {} and damaged.test_ids.size
