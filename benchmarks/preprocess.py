"""Preprocessing throughput and peak memory, against the PTB-XL benchmark's naive loader.

The naive baseline is what github.com/helme/ecg_ptbxl_benchmarking does (`load_raw_data_ptbxl`):
`wfdb.rdsamp` per record in a Python loop, stacked into one numpy array. Ours reads headers with
wfdb and data with numpy, filters, z-scores, bins and writes Parquet, in bounded parts.

Each measurement runs in a fresh subprocess so that its peak RSS is its own. Run twice with
different record counts to see whether peak memory grows with the dataset:

    python benchmarks/preprocess.py --root ../shared/ptbxl --rate 100 --records 400 890
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # worker processes
    return max(own, children) / 1024


def subset_root(root: Path, n: int, tmp: Path) -> Path:
    """A PTB-XL folder view holding the first n metadata rows (records linked, not copied)."""
    db = pd.read_csv(root / "ptbxl_database.csv")
    sub = tmp / f"ptbxl-{n}"
    sub.mkdir()
    db.head(n).to_csv(sub / "ptbxl_database.csv", index=False)
    for name in ("scp_statements.csv", "records100", "records500"):
        if (root / name).exists():
            (sub / name).symlink_to((root / name).resolve())
    return sub


def run_ours(root: str, rate: int, workers: int, part_size: int) -> dict:
    from ptbxl_xai.data.conditioning import FilterSettings
    from ptbxl_xai.data.preprocess import preprocess

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        summary = preprocess(
            root,
            Path(out, "data"),
            Path(out, "labels.parquet"),
            Path(out, "quality.tsv"),
            FilterSettings(rate=rate),
            workers=workers,
            part_size=part_size,
            progress=False,
        )
        seconds = time.perf_counter() - t
    n = int(summary.kept.sum() + summary.quarantined.sum())
    return {"records": n, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def run_naive(root: str, rate: int) -> dict:
    import numpy as np
    import wfdb

    column = "filename_lr" if rate == 100 else "filename_hr"
    files = pd.read_csv(Path(root, "ptbxl_database.csv"))[column]
    t = time.perf_counter()
    data = [wfdb.rdsamp(str(Path(root, f))) for f in files]
    data = np.array([signal for signal, meta in data])
    seconds = time.perf_counter() - t
    return {"records": len(data), "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def measure(method: str, root: Path, args) -> dict:
    """Run one measurement in a fresh interpreter and return its figures."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import preprocess as b; "
        f"print(json.dumps(b.run_{method}({str(root)!r}, {args.rate}"
        + (f", {args.workers}, {args.part_size}" if method == "ours" else "")
        + ")))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "ptbxl")
    parser.add_argument("--rate", type=int, default=100, choices=(100, 500))
    parser.add_argument(
        "--records", type=int, nargs="+", default=[400, 890], help="metadata rows to process (one run each)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part-size", type=int, default=100)
    args = parser.parse_args()
    if not (args.root / "ptbxl_database.csv").is_file():
        sys.exit(
            f"{args.root}: no PTB-XL folder (give --root, e.g. a synthetic one from "
            "`ecgxai synthetic OUT --n-records 2000`)"
        )
    print(f"root {args.root}, {args.rate} Hz, workers {args.workers}, part size {args.part_size}")
    print(f"{'method':<8}{'records':>9}{'seconds':>10}{'records/s':>11}{'peak RSS MB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.records:
            root = subset_root(args.root, n, Path(tmp))
            figures = {m: measure(m, root, args) for m in ("ours", "naive")}
            for m, f in figures.items():
                print(
                    f"{m:<8}{f['records']:>9}{f['seconds']:>10.2f}{f['records'] / f['seconds']:>11.0f}"
                    f"{f['peak_rss_mb']:>13.0f}"
                )
            speedup = (figures["ours"]["records"] / figures["ours"]["seconds"]) / (
                figures["naive"]["records"] / figures["naive"]["seconds"]
            )
            print(f"speed-up at {n} rows: {speedup:.1f}x")


if __name__ == "__main__":
    main()
