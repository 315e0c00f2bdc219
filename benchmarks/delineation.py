"""Delineation methods compared: error against synthetic ground truth, speed, and real PTB-XL records.

    python benchmarks/delineation.py [--n-synthetic 60] [--real ../shared/ptbxl] [--real-records 0]
                                     [--methods neurokit_prominence neurokit_dwt ecgdeli] [--workers 2]

Prints, per method:
1. onset/offset errors (ms, detected minus true, median and 95th percentile of |error|) on a
   seeded synthetic PTB-XL at 100 Hz whose generator wrote the true fiducials, beside the CSE 2-SD
   tolerances; at 100 Hz one sample is 10 ms, so a one-sample error already exceeds the QRS-onset
   (6.5 ms) and P-onset (10.2 ms) tolerances;
2. speed (records/s on one core; the rule spreads parts over its threads);
3. on the real records (labelled PTB-XL rows that preprocessing keeps, at 100 Hz): the share
   delineated, the failure reasons, and the QRS, PR and QT duration distributions (5th, 50th, 95th
   percentile) with the share inside physiological ranges.
`--real-records N` takes a seeded random subset of N real records (0: all).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ptbxl_xai.config import FilterSettings
from ptbxl_xai.data.delineation import (
    FIDUCIALS,
    METHODS,
    DelineationError,
    delineate_record,
    error_table,
    match_to_truth,
    record_summary,
)
from ptbxl_xai.data.parquet_io import load_signals_mv
from ptbxl_xai.data.preprocess import preprocess
from ptbxl_xai.data.synthetic import FIDUCIALS_CSV, generate_ptbxl

RATE = 100
# Adult ranges, ms: QRS 60-120 normal (to ~180 in bundle-branch block), PR 120-200 normal
# (longer in AV block), QT 300-480 (rate-dependent). Durations outside the wide bounds are implausible.
RANGES_MS = {"qrs_ms": (60, 120, 180), "pr_ms": (120, 200, 320), "qt_ms": (300, 480, 560)}


def _run(args):
    x, ids, method = args
    rows, beats, seconds = [], [], 0.0
    for xi, ecg_id in zip(x, ids):
        t = time.perf_counter()
        try:
            b = delineate_record(xi, RATE, method)
            row = {"ecg_id": int(ecg_id), "status": "ok", "reason": "", **record_summary(b, RATE)}
            beats.append(pd.DataFrame(b, columns=list(FIDUCIALS)).assign(ecg_id=int(ecg_id)))
        except DelineationError as exc:
            row = {"ecg_id": int(ecg_id), "status": "failed", "reason": str(exc)}
        seconds += time.perf_counter() - t
        rows.append(row)
    return rows, beats, seconds


def run_method(x, ids, method, workers):
    """(summary rows, beats table, CPU-seconds per record) of one method over records."""
    chunks = [(x[i : i + 10], ids[i : i + 10], method) for i in range(0, len(ids), 10)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_run, chunks))
    rows = [r for res in results for r in res[0]]
    beats = [b for res in results for b in res[1]]
    beats = pd.concat(beats, ignore_index=True) if beats else pd.DataFrame(columns=["ecg_id", *FIDUCIALS])
    return pd.DataFrame(rows), beats, sum(res[2] for res in results) / max(1, len(ids))


def _prepare(root: Path, work: Path) -> Path:
    out = work / f"{RATE}hz"
    if not out.exists():
        preprocess(root, out, work / "labels.parquet", work / "quality.tsv", FilterSettings(rate=RATE), workers=2)
    return out


def durations(summary: pd.DataFrame) -> pd.DataFrame:
    ok = summary[summary["status"] == "ok"]
    rows = []
    for col, (lo, normal_hi, hi) in RANGES_MS.items():
        v = ok[col].dropna()
        rows.append(
            {
                "duration": col,
                "records": len(v),
                "p5": v.quantile(0.05),
                "median": v.median(),
                "p95": v.quantile(0.95),
                "share_normal": ((v >= lo) & (v <= normal_hi)).mean(),
                "share_plausible": ((v >= lo * 0.8) & (v <= hi)).mean(),
                "range_ms": f"normal {lo}-{normal_hi}, plausible {lo * 0.8:.0f}-{hi}",
            }
        )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-synthetic", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "ptbxl")
    ap.add_argument("--real-records", type=int, default=0, help="seeded random subset of real records (0: all)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="keep preprocessed data here between runs")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pd.set_option("display.width", 160)
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-delineation-"))
    work.mkdir(parents=True, exist_ok=True)

    syn_root = work / f"synthetic-{a.n_synthetic}-{a.seed}"
    if not (syn_root / FIDUCIALS_CSV).exists():
        generate_ptbxl(syn_root, a.n_synthetic, seed=a.seed, rates=(RATE,))
    syn_data = _prepare(syn_root, work / f"synthetic-{a.n_synthetic}-{a.seed}-data")
    x, ids, _ = load_signals_mv(syn_data, range(1, 11))
    truth = pd.read_csv(syn_root / FIDUCIALS_CSV)
    truth = truth[(truth["rate"] == RATE) & truth["r"].between(0.3 * RATE, 9.7 * RATE)]  # edge beats are cut
    print(
        f"== Synthetic PTB-XL, seed {a.seed}: {len(ids)} records at {RATE} Hz, {len(truth)} true beats "
        f"(R 0.3-9.7 s); errors in ms, detected - true; 1 sample = {1000 / RATE:.0f} ms"
    )
    for method in a.methods:
        summary, beats, sec = run_method(x, ids, method, a.workers)
        table = error_table(match_to_truth(beats, truth, RATE))
        failed = (summary["status"] == "failed").sum()
        print(f"\n-- {method}: {1 / sec:.2f} records/s per core, {failed} of {len(ids)} records failed")
        print(table.round(3).to_string(index=False))

    if not (a.real / "ptbxl_database.csv").exists():
        print(f"\n(no real PTB-XL at {a.real}: real-record figures skipped)")
        return 0
    real_data = _prepare(a.real, work / "real-data")
    x, ids, meta = load_signals_mv(real_data, range(1, 11))
    if a.real_records and a.real_records < len(ids):
        pick = np.sort(np.random.default_rng(0).choice(len(ids), a.real_records, replace=False))
        x, ids = x[pick], ids[pick]
    print(f"\n== Real PTB-XL at {a.real}: {len(ids)} labelled records at {RATE} Hz (folds 1-10), filtered, in mV")
    for method in a.methods:
        t = time.perf_counter()
        summary, _, sec = run_method(x, ids, method, a.workers)
        wall = time.perf_counter() - t
        ok = summary["status"] == "ok"
        print(
            f"\n-- {method}: delineated {ok.sum()} of {len(ids)} ({ok.mean():.1%}); "
            f"{1 / sec:.2f} records/s per core, {wall:.0f} s wall on {a.workers} workers"
        )
        if (~ok).any():
            reasons = summary.loc[~ok, "reason"].str.replace(r"\d+", "N", regex=True).value_counts()
            print("   failures: " + "; ".join(f"{n} x {r}" for r, n in reasons.items()))
        print(
            f"   frac_delineated (median over ok records) {summary.loc[ok, 'frac_delineated'].median():.2f}, "
            f"rr_irregularity median {summary.loc[ok, 'rr_irregularity'].median():.3f}"
        )
        print(durations(summary).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
