"""Full-size proof: a synthetic PTB-XL as large as the real one, preprocessed and run end to end.

Stages (each skipped when its result file already exists, so an interrupted run continues):

1. ``generate``: a synthetic PTB-XL of 21,837 records (the size of PTB-XL v1.0.3) with both
   ``records100/`` and ``records500/`` (about 3.3 GB), in ``WORK/ptbxl``.
2. ``preprocess500``: ``ptbxl_xai.data.preprocess`` at 500 Hz on all of it, in a fresh interpreter:
   wall time, records/s and peak RSS (the process and its workers). Target: peak <= 4 GiB.
3. ``dag``: the whole default DAG (``snakemake`` with this checkout's config.yaml) at 100 Hz on
   ``--cores`` cores, reading the generated folder as ``source: local``, with training epochs capped
   by a config file written to ``WORK/scale.yaml``. Wall time and peak RSS per rule come from the
   rules' own benchmark files (``WORK/dag/results/benchmarks``).

Figures are printed and stored in ``WORK/*.json``. Start it niced in the background:

    nice -n 10 python benchmarks/scale.py > benchmarks/out/scale.txt 2>&1 &
    python benchmarks/scale.py --report      # print what has finished so far
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PTBXL_RECORDS = 21837  # PTB-XL v1.0.3


def _peak_rss_mb(workers: int = 0) -> float:
    """Peak RSS of this process, plus `workers` times the largest child's peak (an upper bound
    of the pool's sum, since getrusage reports the largest child, not the sum)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers * children) / 1024 if workers else max(own, children) / 1024


def _save(path: Path, figures: dict) -> dict:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(figures, indent=1))
    tmp.replace(path)
    return figures


def _in_fresh_interpreter(function: str, *args) -> dict:
    """Run ``function(*args)`` of this module in a new Python, so its peak RSS is its own."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import scale; "
        f"print(json.dumps(scale.{function}(*{args!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_generate(root: str, n_records: int, seed: int) -> dict:
    from ptbxl_xai.data.synthetic import generate_ptbxl

    t = time.perf_counter()
    generate_ptbxl(root, n_records=n_records, seed=seed, rates=(100, 500))
    seconds = time.perf_counter() - t
    size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
    return {"records": n_records, "seconds": seconds, "gigabytes": size / 1e9, "peak_rss_mb": _peak_rss_mb()}


def run_preprocess(root: str, out: str, rate: int, workers: int, part_size: int) -> dict:
    from ptbxl_xai.config import FilterSettings
    from ptbxl_xai.data.preprocess import preprocess

    t = time.perf_counter()
    summary = preprocess(
        root,
        Path(out, f"{rate}hz"),
        Path(out, "labels.parquet"),
        Path(out, "quality.tsv"),
        FilterSettings(rate=rate),
        workers=workers,
        part_size=part_size,
        progress=False,
    )
    seconds = time.perf_counter() - t
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime  # what an idle machine would need
    kept, quarantined = int(summary.kept.sum()), int(summary.quarantined.sum())
    size = sum(p.stat().st_size for p in Path(out, f"{rate}hz").rglob("*.parquet"))
    return {
        "rate": rate,
        "workers": workers,
        "part_size": part_size,
        "records": kept + quarantined,
        "kept": kept,
        "quarantined": quarantined,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "records_per_s": (kept + quarantined) / seconds,
        "peak_rss_mb": _peak_rss_mb(workers),
        "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "parquet_gigabytes": size / 1e9,
    }


def write_dag_config(path: Path, root: Path, epochs: int) -> None:
    path.write_text(
        "# benchmarks/scale.py: the default DAG on the full-size synthetic PTB-XL; only epochs capped\n"
        f"data:\n  source: local\n  path: {root}\n"
        f"train:\n  epochs: {epochs}\n"
    )


def read_rule_benchmarks(results: Path) -> list[dict]:
    """One row per job from the rules' benchmark files: rule (file name), wall s, peak RSS MB."""
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(tsv) as f:
            for rec in csv.DictReader(f, delimiter="\t"):
                rss = rec.get("max_rss", "NA")
                rows.append(
                    {
                        "job": str(tsv.relative_to(results / "benchmarks").with_suffix("")),
                        "seconds": float(rec["s"]),
                        "cpu_seconds": float(rec["cpu_time"]) if rec.get("cpu_time") not in (None, "NA", "") else None,
                        "peak_rss_mb": float(rss) if rss not in ("NA", "", "-") else None,
                    }
                )
    return rows


def run_dag(work: Path, cores: int, epochs: int) -> dict:
    config = work / "scale.yaml"
    write_dag_config(config, (work / "ptbxl").resolve(), epochs)
    dag = work / "dag"
    dag.mkdir(exist_ok=True)
    cmd = [
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(dag),
        "--cores",
        str(cores),
        "--configfile",
        str(config),
        "--rerun-triggers",
        "mtime",
    ]
    print("+", " ".join(cmd), flush=True)
    t = time.perf_counter()
    with open(work / "dag.log", "a") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    return {
        "cores": cores,
        "epochs": epochs,
        "returncode": rc,
        "seconds": time.perf_counter() - t,
        "jobs": read_rule_benchmarks(dag / "results"),
    }


def report(work: Path) -> None:
    gen, pre, dag = (work / f"{n}.json" for n in ("generate", "preprocess500", "dag"))
    if gen.is_file():
        g = json.loads(gen.read_text())
        print(
            f"generate: {g['records']} records at 100 and 500 Hz, {g['gigabytes']:.2f} GB, "
            f"{g['seconds']:.0f} s, peak RSS {g['peak_rss_mb']:.0f} MB"
        )
    if pre.is_file():
        p = json.loads(pre.read_text())
        print(
            f"preprocess at {p['rate']} Hz: {p['records']} records ({p['kept']} kept, {p['quarantined']} quarantined), "
            f"{p['workers']} workers, part size {p['part_size']}: {p['seconds']:.0f} s, "
            f"{p['records_per_s']:.0f} records/s"
            + (f" ({p['cpu_seconds']:.0f} CPU s)" if "cpu_seconds" in p else "")
            + f", peak RSS {p['peak_rss_mb']:.0f} MB "
            f"(main {p['main_rss_mb']:.0f} MB + {p['workers']} x largest worker {p['worker_rss_mb']:.0f} MB) "
            f"({'within' if p['peak_rss_mb'] <= 4096 else 'ABOVE'} the 4 GiB target), Parquet {p['parquet_gigabytes']:.2f} GB"
        )
    results = work / "dag" / "results"
    d = json.loads(dag.read_text()) if dag.is_file() else None
    jobs = d["jobs"] if d else (read_rule_benchmarks(results) if results.is_dir() else [])
    if jobs:
        state = (
            f"finished (exit {d['returncode']}) in {d['seconds']:.0f} s on {d['cores']} cores, epochs <= {d['epochs']}"
            if d
            else "still running or interrupted: jobs finished so far"
        )
        print(f"default DAG at 100 Hz: {state}")
        print(f"{'job':<52}{'wall s':>10}{'CPU s':>10}{'peak RSS MB':>13}")
        for j in jobs:
            rss = f"{j['peak_rss_mb']:.0f}" if j["peak_rss_mb"] is not None else "NA"
            cpu = f"{j['cpu_seconds']:.1f}" if j.get("cpu_seconds") is not None else "NA"
            print(f"{j['job']:<52}{j['seconds']:>10.1f}{cpu:>10}{rss:>13}")
        print(f"{'sum of job wall times':<52}{sum(j['seconds'] for j in jobs):>10.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "out" / "scale")
    ap.add_argument("--records", type=int, default=PTBXL_RECORDS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="preprocess worker processes")
    ap.add_argument("--part-size", type=int, default=500, help="records per Parquet part (config default)")
    ap.add_argument("--cores", type=int, default=2, help="snakemake --cores for the DAG")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs cap of the DAG run")
    ap.add_argument("--stages", nargs="+", default=["generate", "preprocess500", "dag"])
    ap.add_argument("--subset", type=int, help="preprocess500 on the first N metadata rows only (CPU s per record)")
    ap.add_argument("--report", action="store_true", help="only print the figures measured so far")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.report:
        report(work)
        return 0
    root = work / "ptbxl"
    if "generate" in args.stages and not (work / "generate.json").is_file():
        print(f"generating {args.records} records in {root}", flush=True)
        _save(work / "generate.json", _in_fresh_interpreter("run_generate", str(root), args.records, args.seed))
    if args.subset:  # a second, smaller measurement beside the full one
        sys.path.insert(0, str(Path(__file__).parent))
        from preprocess import subset_root

        with tempfile.TemporaryDirectory(dir=work) as tmp:
            sub = subset_root(root, args.subset, Path(tmp))
            figures = _in_fresh_interpreter("run_preprocess", str(sub), str(Path(tmp, "out")), 500, args.workers, 500)
        _save(work / f"preprocess500-{args.subset}.json", figures)
        print(json.dumps(figures, indent=1))
        return 0
    if "preprocess500" in args.stages and not (work / "preprocess500.json").is_file():
        print("preprocessing at 500 Hz", flush=True)
        figures = _in_fresh_interpreter(
            "run_preprocess", str(root), str(work / "preprocess500"), 500, args.workers, args.part_size
        )
        _save(work / "preprocess500.json", figures)
        shutil.rmtree(work / "preprocess500")  # 5 GB of Parquet that nothing reads
    if "dag" in args.stages and not (work / "dag.json").is_file():
        print("running the default DAG at 100 Hz", flush=True)
        _save(work / "dag.json", run_dag(work, args.cores, args.epochs))
    report(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
