"""Throughput/latency benchmark of the default HybridECGNet (or a published baseline).

    python benchmarks/train.py                 # CPU, 2 threads, T=1000
    python benchmarks/train.py --device cuda   # CUDA with AMP
    python benchmarks/train.py --architecture inception1d --records 512   # a baseline, default hyper-parameters

Prints training records/s (train_model on random data, a few epochs), peak RSS,
batched inference (ms/record, batch 256), single-record latency (median ms),
and the parameter count. Targets on 2 CPU cores: >= 200 training records/s,
<= 1 ms/record batched, <= 3 ms single record. They are the hybrid model's; for a
baseline (--architecture, see ptbxl_xai.model.baselines) the line is printed for comparison.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from ptbxl_xai.model.hybrid import ARCHITECTURES, count_parameters, model_from_config
from ptbxl_xai.model.training import TrainConfig, predict, resolve_device, train_model


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument(
        "--architecture",
        default="hybrid",
        choices=ARCHITECTURES,
        help="model_from_config architecture, with its default hyper-parameters",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--records", type=int, default=2048, help="training records")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--samples", type=int, default=1000, help="T, samples per lead")
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--single-runs", type=int, default=200)
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    T, C = args.samples, args.classes
    X = rng.standard_normal((args.records, 12, T), dtype=np.float32)
    Y = (rng.random((args.records, C)) < 0.3).astype(np.uint8)
    Xv, Yv = X[:128], Y[:128]  # small validation set: per-epoch overhead stays small

    torch.manual_seed(0)
    model = model_from_config({"architecture": args.architecture}, n_classes=C)
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=None,
        device=device.type,
        num_threads=args.threads,
        amp=True,
    )
    _, hist = train_model(model, X, Y, Xv, Yv, cfg, progress=False)
    # epoch 1 carries one-off warm-up (kernel selection, allocator); report the rest when there is one
    steady = hist.seconds.iloc[1:] if len(hist) > 1 else hist.seconds
    train_rps = args.records * len(steady) / steady.sum()

    model.to(device).eval()
    Xb = X[:1024]
    predict(model, Xb[:256], batch_size=256, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    predict(model, Xb, batch_size=256, device=device)
    _sync(device)
    batched_ms = (time.perf_counter() - t0) / len(Xb) * 1e3

    x1 = torch.from_numpy(X[:1]).to(device)
    times = []
    with torch.inference_mode():
        for i in range(args.single_runs + 10):
            t0 = time.perf_counter()
            model(x1)
            _sync(device)
            if i >= 10:
                times.append(time.perf_counter() - t0)
    single_ms = float(np.median(times)) * 1e3

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} threads"
    print(f"model: {args.architecture} ({type(model).__name__})")
    print(f"device: {name}; torch {torch.__version__}; T={T}, C={C}, batch {args.batch_size}")
    print(f"parameters:            {count_parameters(model):,}")
    print(
        f"training:              {train_rps:,.0f} records/s (epochs: "
        + ", ".join(f"{args.records / s:,.0f}" for s in hist.seconds)
        + ")"
    )
    print(f"inference batched:     {batched_ms:.3f} ms/record (batch 256)")
    print(f"inference single:      {single_ms:.2f} ms (median of {args.single_runs})")
    print(f"peak RSS:              {peak_rss_mb:,.0f} MiB")
    if device.type == "cpu" and args.threads == 2 and T == 1000:
        ok = train_rps >= 200 and batched_ms <= 1 and single_ms <= 3
        which = "" if args.architecture == "hybrid" else "hybrid model's "
        print(f"{which}targets (>=200 rec/s, <=1 ms/record, <=3 ms single):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
