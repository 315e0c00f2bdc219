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
    "train": {"device": "cpu"},  # CPU: seeded and reproducible; synthetic.yaml's 8 epochs (test_workflow's AUC floor)
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


# Same seed and thread count on CPU: data are byte-identical, but trained weights have been seen to
# differ by up to 8e-6 between two processes (once in ~10 CI runs; MKL/oneDNN may split a reduction
# differently per process), so predictions, metrics and weights are compared to within these.
RESULT_RTOL, RESULT_ATOL = 1e-3, 1e-4


def _assert_frames_close(fa, fb, what: str) -> float:
    """Same columns, same non-float values, float columns within RESULT_*TOL; the largest difference."""
    import numpy as np
    import pandas as pd

    assert list(fa.columns) == list(fb.columns) and len(fa) == len(fb), f"{what}: different shape or columns"
    worst = 0.0
    for col in fa.columns:
        a, b = fa[col], fb[col]
        if pd.api.types.is_float_dtype(a) and pd.api.types.is_float_dtype(b):
            a, b = a.to_numpy(float), b.to_numpy(float)
            assert np.allclose(a, b, rtol=RESULT_RTOL, atol=RESULT_ATOL, equal_nan=True), (
                f"{what}: column {col} differs by up to {np.nanmax(np.abs(a - b)):.3g}"
            )
            both = ~(np.isnan(a) | np.isnan(b))
            worst = max(worst, float(np.abs(a[both] - b[both]).max(initial=0.0)))
        elif np.max(a.map(np.ndim).to_numpy(), initial=0) > 0:  # list columns (probability vectors)
            stack = [np.asarray(v.tolist(), float) for v in (a, b)]
            assert np.allclose(*stack, rtol=RESULT_RTOL, atol=RESULT_ATOL), f"{what}: column {col} differs"
            worst = max(worst, float(np.abs(stack[0] - stack[1]).max(initial=0.0)))
        else:
            assert a.equals(b), f"{what}: column {col} differs"
    return worst


def assert_same_results(a: Path, b: Path) -> dict:
    """Two workdirs of the same configuration hold the same results.

    Same file list; data Parquet value-identical (rows, columns, schema metadata); predictions,
    metric tables and model weights equal to within RESULT_RTOL/RESULT_ATOL. Returns how many
    files of each kind were compared and the largest difference seen.
    """
    import json

    import pandas as pd
    import pyarrow.parquet as pq
    import torch

    files_a, files_b = result_files(a), result_files(b)
    assert files_a == files_b, f"only in {a}: {sorted(files_a - files_b)}; only in {b}: {sorted(files_b - files_a)}"
    tables = sorted(f for f in files_a if f.startswith("metrics/") and f.endswith(".tsv"))
    data = sorted(f for f in files_a if f.startswith("data/") and f.endswith(".parquet"))
    predictions = sorted(f for f in files_a if f.startswith("predictions/") and f.endswith(".parquet"))
    models = sorted(f for f in files_a if f.startswith("models/") and f.endswith("/model.pt"))
    assert tables and data and predictions and models, "no metric tables, data, predictions or models to compare"
    # in DAG order (data, weights, predictions, metrics), so a failure names the first stage that differs
    for rel in data:
        ta, tb = pq.read_table(a / "results" / rel), pq.read_table(b / "results" / rel)
        assert ta.equals(tb, check_metadata=True), f"results/{rel} differs (first stage that differs)"
    worst = {"weights": 0.0, "predictions": 0.0, "metrics": 0.0}
    for rel in models:
        sa, sb = (torch.load(w / "results" / rel, map_location="cpu", weights_only=True) for w in (a, b))
        assert sa.keys() == sb.keys(), f"results/{rel}: different parameters"
        for key, ta in sa.items():
            if not torch.is_tensor(ta):
                assert ta == sb[key], f"results/{rel}: {key} differs"
                continue
            tb = sb[key]
            assert ta.shape == tb.shape, f"results/{rel}: {key} has another shape"
            if ta.is_floating_point():
                diff = float((ta - tb).abs().max()) if ta.numel() else 0.0
                assert torch.allclose(ta, tb, rtol=RESULT_RTOL, atol=RESULT_ATOL), f"results/{rel}: {key} by {diff:.3g}"
                worst["weights"] = max(worst["weights"], diff)
            else:
                assert torch.equal(ta, tb), f"results/{rel}: {key} differs"
        ja, jb = (json.loads((w / "results" / rel).with_name("thresholds.json").read_text()) for w in (a, b))
        assert {**ja, "thresholds": None} == {**jb, "thresholds": None}, f"results/{rel}: thresholds.json differs"
        assert ja["thresholds"].keys() == jb["thresholds"].keys(), f"results/{rel}: thresholds.json labels differ"
        steps = [abs(ja["thresholds"][k] - jb["thresholds"][k]) for k in ja["thresholds"]]
        assert max(steps) <= 0.0101, f"results/{rel}: a threshold moved by {max(steps)} (more than one grid step)"
    for rel in predictions:
        fa, fb = (pq.read_table(w / "results" / rel) for w in (a, b))
        assert fa.schema.equals(fb.schema, check_metadata=True), f"results/{rel}: schema differs"
        worst["predictions"] = max(worst["predictions"], _assert_frames_close(fa.to_pandas(), fb.to_pandas(), rel))
    for rel in tables:
        fa, fb = (pd.read_csv(w / "results" / rel, sep="\t") for w in (a, b))
        worst["metrics"] = max(worst["metrics"], _assert_frames_close(fa, fb, rel))
    return {"tsv": len(tables), "parquet": len(data) + len(predictions), "models": len(models), "worst": worst}
