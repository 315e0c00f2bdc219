"""The whole DAG on the synthetic configuration, as a user runs it (real Snakemake subprocesses)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ecgxai.dataset import load_fold_arrays

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC = REPO / "tests" / "config" / "synthetic.yaml"

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(SYNTHETIC), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    wd = tmp_path_factory.mktemp("workflow")
    run = snakemake(wd)
    assert run.returncode == 0, run.stderr[-5000:]
    return wd


def test_synthetic_dag_produces_the_data_contract(workdir):
    data = workdir / "results" / "data"
    x, y, ids, names = load_fold_arrays(data / "100hz", data / "labels.parquet", range(1, 9), "superdiagnostic")
    assert x.shape[1:] == (12, 1000) and len(ids) > 150
    assert set(names) == {"CD", "HYP", "MI", "NORM", "STTC"}
    quality = pd.read_csv(data / "quality.tsv", sep="\t")
    assert list(quality.columns) == ["ecg_id", "strat_fold", "record", "kind", "reason"]
    for rule in ("acquire", "preprocess"):
        assert (workdir / "results" / "logs" / f"{rule}.log").stat().st_size > 0
        bench = pd.read_csv(workdir / "results" / "benchmarks" / f"{rule}.tsv", sep="\t")
        assert "max_rss" in bench.columns


def test_rerun_is_a_no_op(workdir):
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_typo_in_config_fails_before_any_job(tmp_path):
    run = snakemake(tmp_path, "--config", "preprocess={n_binz: 10}")
    assert run.returncode != 0
    assert "'n_binz' was unexpected" in run.stderr
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint"],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
