"""Shared fixtures: a tiny PTB-XL-shaped folder written with wfdb, for precise bad-input tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from ptbxl_xai.data.ptbxl import DATABASE_COLUMNS, LEADS, bundled_statements, record_path

REPO = Path(__file__).resolve().parent.parent
SHARED_PTBXL = REPO.parent / "shared" / "ptbxl"

CODES = [
    "{'NORM': 100.0, 'SR': 0.0}",
    "{'IMI': 50.0, 'SR': 0.0}",
    "{'CLBBB': 100.0, 'AFIB': 0.0}",
    "{'LVH': 100.0, 'ISC_': 50.0, 'SR': 0.0}",
]


def ecg_like(rng, samples: int, rate: int, leads: int = 12) -> np.ndarray:
    """[samples, leads] mV: a periodic spiky wave plus noise; enough to exercise preprocessing."""
    t = np.arange(samples) / rate
    beat = np.exp(-(((t % 0.8) - 0.3) ** 2) / (2 * 0.01**2))
    gains = rng.uniform(0.3, 1.5, leads)
    return beat[:, None] * gains + 0.02 * rng.standard_normal((samples, leads))


def write_record(root: Path, ecg_id: int, rate: int, sig: np.ndarray, names=LEADS, fs=None) -> str:
    rel = record_path(ecg_id, rate)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        path.name,
        fs=fs or rate,
        units=["mV"] * sig.shape[1],
        sig_name=list(names),
        p_signal=sig,
        fmt=["16"] * sig.shape[1],
        adc_gain=[1000.0] * sig.shape[1],
        baseline=[0] * sig.shape[1],
        write_dir=str(path.parent),
    )
    return rel


def make_tiny_ptbxl(root: Path, n: int = 20, rate: int = 100, seed: int = 0) -> pd.DataFrame:
    """n good records, ecg_id 1..n, two per patient, strat_fold cycling 1..10."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for ecg_id in range(1, n + 1):
        write_record(root, ecg_id, rate, ecg_like(rng, 10 * rate, rate))
        row = dict.fromkeys(DATABASE_COLUMNS, "")
        row.update(
            ecg_id=ecg_id,
            patient_id=float(1000 + (ecg_id + 1) // 2),
            scp_codes=CODES[ecg_id % 4],
            strat_fold=((ecg_id - 1) // 2) % 10 + 1,
            filename_lr=record_path(ecg_id, 100),
            filename_hr=record_path(ecg_id, 500),
        )
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(DATABASE_COLUMNS))
    df.to_csv(root / "ptbxl_database.csv", index=False)
    (root / "scp_statements.csv").write_bytes(bundled_statements().read_bytes())
    return df


@pytest.fixture
def tiny_ptbxl(tmp_path) -> Path:
    root = tmp_path / "ptbxl"
    make_tiny_ptbxl(root)
    return root


# --- Shared by the workflow-level tests (test_reruns.py, test_slurm.py) ----------------------------
# Runs go through test_workflow.snakemake (it passes `--configfile tests/config/synthetic.yaml`);
# a later `--configfile` replaces that list, so the quick configuration below is the synthetic one
# with a few values changed, written as one file.

QUICK_OVERRIDES = {
    "train": {"epochs": 2, "device": "cpu"},  # CPU: seeded and deterministic; 2 epochs: quick
    "evaluate": {"n_boot": 50},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="session")
def quick_config(tmp_path_factory) -> Path:
    """tests/config/synthetic.yaml with QUICK_OVERRIDES merged in, as a file for `--configfile`."""
    import yaml

    base = yaml.safe_load((REPO / "tests" / "config" / "synthetic.yaml").read_text())
    path = tmp_path_factory.mktemp("config") / "quick.yaml"
    path.write_text(yaml.safe_dump(_merge(base, QUICK_OVERRIDES), sort_keys=False))
    return path


@pytest.fixture(scope="session")
def quick_workdir(tmp_path_factory, quick_config) -> Path:
    """The default target of the quick configuration, run locally once per session. Shared:
    tests that change it work on a copy (copy_workdir)."""
    import time

    from test_workflow import snakemake

    wd = tmp_path_factory.mktemp("quick")
    started = time.monotonic()
    run = snakemake(wd, "--configfile", str(quick_config))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    print(f"\nlocal run of the quick synthetic DAG: {time.monotonic() - started:.0f} s")
    return wd


def copy_workdir(src: Path, dst: Path) -> Path:
    """A copy Snakemake sees as the same state: results, inputs and .snakemake metadata, mtimes kept."""
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table Snakemake prints (dry runs too) as {rule: count}, without `total`."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[i + 3 :]:  # header and ---- ruler
                parts = row.split()
                if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
                    break
                counts[parts[0]] = int(parts[1])
            break
    return counts


def result_files(workdir: Path) -> set[str]:
    """Everything under results/ except per-run logs and benchmarks (timings differ per run)."""
    root = workdir / "results"
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in ("logs", "benchmarks")
    }


def assert_same_results(a: Path, b: Path) -> dict[str, int]:
    """Two workdirs of the same configuration hold the same results.

    Same file list; metric tables byte-identical; Parquet data and predictions value-identical
    (rows, columns and schema metadata). Returns how many files of each kind were compared.
    """
    import pyarrow.parquet as pq

    files_a, files_b = result_files(a), result_files(b)
    assert files_a == files_b, f"only in {a}: {sorted(files_a - files_b)}; only in {b}: {sorted(files_b - files_a)}"
    tables = sorted(f for f in files_a if f.startswith("metrics/") and f.endswith(".tsv"))
    parquet = sorted(f for f in files_a if f.startswith(("data/", "predictions/")) and f.endswith(".parquet"))
    assert tables and parquet, "no metric tables or Parquet files to compare"
    # in DAG order (data, predictions, metrics), so a failure names the first stage that differs
    for rel in sorted(parquet, key=lambda f: not f.startswith("data/")):
        ta, tb = pq.read_table(a / "results" / rel), pq.read_table(b / "results" / rel)
        assert ta.equals(tb, check_metadata=True), f"results/{rel} differs (first stage that differs)"
    for rel in tables:
        assert (a / "results" / rel).read_bytes() == (b / "results" / rel).read_bytes(), f"results/{rel} differs"
    return {"tsv": len(tables), "parquet": len(parquet)}
