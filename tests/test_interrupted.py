"""Interrupted acquisitions and killed jobs: a rerun needs no manual clean-up."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptbxl_xai.data.acquire import MARKER, acquire, check_ptbxl_folder
from ptbxl_xai.tempdirs import owned_temp, remove_stale

REPO = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_synthetic_acquisition_is_rerun(tmp_path):
    root = tmp_path / "ptbxl"
    big = {"source": "synthetic", "path": str(root), "synthetic": {"n_records": 5000, "seed": 0}}
    code = f"from ptbxl_xai.data.acquire import acquire; acquire({big!r}, 100)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not any(root.glob("records100/*/*.dat")):  # killed once records are being written
            assert proc.poll() is None and time.monotonic() < deadline, "generation ended before it was killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((root / MARKER).read_text())["complete"] is False

    small = {**big, "synthetic": {"n_records": 40, "seed": 0}}
    manifest = acquire(small, 100, progress=False)
    assert manifest["source"] == "synthetic" and check_ptbxl_folder(root, 100)["headers"] >= 40
    assert json.loads((root / MARKER).read_text())["complete"] is True


def test_a_foreign_folder_is_still_refused(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "thesis.tex").write_text("not a dataset\n")
    with pytest.raises(FileExistsError, match="not a synthetic dataset made by this workflow"):
        acquire({"source": "synthetic", "path": str(root), "synthetic": {"n_records": 20, "seed": 0}}, 100)
    assert (root / "thesis.tex").read_text() == "not a dataset\n"


def test_temp_folders_of_dead_jobs_are_removed_and_others_kept(tmp_path):
    final = tmp_path / "100hz"
    host = socket.gethostname().replace("-", "_")
    dead = tmp_path / f".100hz.tmp-{host}-{_dead_pid()}"
    live = owned_temp(final, "tmp")  # this process: alive
    elsewhere = tmp_path / f".100hz.tmp-othernode-{_dead_pid()}"  # a cluster job on another host
    for d in (dead, live, elsewhere):
        (d / "fold=1").mkdir(parents=True)
    assert remove_stale(final, "tmp") == [dead]
    assert not dead.exists() and live.exists() and elsewhere.exists()


def test_preprocess_clears_a_killed_runs_parts(tiny_ptbxl, tmp_path):
    from ptbxl_xai.config import FilterSettings
    from ptbxl_xai.data.preprocess import preprocess

    out = tmp_path / "data" / "100hz"
    host = socket.gethostname().replace("-", "_")
    leftover = out.parent / f".100hz.tmp-{host}-{_dead_pid()}"
    (leftover / "fold=1").mkdir(parents=True)
    (leftover / "fold=1" / "signals-00000.parquet").write_bytes(b"half a part")
    preprocess(tiny_ptbxl, out, tmp_path / "labels.parquet", tmp_path / "q.tsv", FilterSettings(), progress=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["100hz"]
