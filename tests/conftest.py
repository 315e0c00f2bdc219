"""Shared fixtures: a tiny PTB-XL-shaped folder written with wfdb, for precise bad-input tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgxai.ptbxl import DATABASE_COLUMNS, LEADS, bundled_statements, record_path

REPO = Path(__file__).resolve().parent.parent
SHARED_PTBXL = REPO.parent / "shared" / "ptbxl"

CODES = ["{'NORM': 100.0, 'SR': 0.0}", "{'IMI': 50.0, 'SR': 0.0}", "{'CLBBB': 100.0, 'AFIB': 0.0}",
         "{'LVH': 100.0, 'ISC_': 50.0, 'SR': 0.0}"]


def ecg_like(rng, samples: int, rate: int, leads: int = 12) -> np.ndarray:
    """[samples, leads] mV: a periodic spiky wave plus noise; enough to exercise preprocessing."""
    t = np.arange(samples) / rate
    beat = np.exp(-((t % 0.8) - 0.3) ** 2 / (2 * 0.01 ** 2))
    gains = rng.uniform(0.3, 1.5, leads)
    return beat[:, None] * gains + 0.02 * rng.standard_normal((samples, leads))


def write_record(root: Path, ecg_id: int, rate: int, sig: np.ndarray, names=LEADS, fs=None) -> str:
    rel = record_path(ecg_id, rate)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(path.name, fs=fs or rate, units=["mV"] * sig.shape[1], sig_name=list(names),
                p_signal=sig, fmt=["16"] * sig.shape[1], adc_gain=[1000.0] * sig.shape[1],
                baseline=[0] * sig.shape[1], write_dir=str(path.parent))
    return rel


def make_tiny_ptbxl(root: Path, n: int = 20, rate: int = 100, seed: int = 0) -> pd.DataFrame:
    """n good records, ecg_id 1..n, two per patient, strat_fold cycling 1..10."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for ecg_id in range(1, n + 1):
        write_record(root, ecg_id, rate, ecg_like(rng, 10 * rate, rate))
        row = dict.fromkeys(DATABASE_COLUMNS, "")
        row.update(ecg_id=ecg_id, patient_id=float(1000 + (ecg_id + 1) // 2), scp_codes=CODES[ecg_id % 4],
                   strat_fold=((ecg_id - 1) // 2) % 10 + 1, filename_lr=record_path(ecg_id, 100),
                   filename_hr=record_path(ecg_id, 500))
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
