"""Seconds per record of SHAP and LIME against the model-call floor, on random records.

    python benchmarks/explain.py [--records 10] [--threads 2] [--batch 512] [--full]

Builds the default `ecgxai.model.hybrid.HybridECGNet` (random weights are fine for timing; a small
conv net stands in if the model module is missing), explains each record for its top-3
labels with the default settings and prints, per method, seconds per record, the floor
(the same number of forward passes, batched, on unmasked signals) and their ratio, then
the projection for 100 records x top-3 labels. Targets on 2 CPU cores: each method within
2x of its floor and 100 records under 10 minutes for SHAP + LIME.

Defaults being timed (ecgxai.explain): SHAP npermutations=3 (1443 calls/record),
LIME num_samples=1000; with --full also gradient SHAP (64 samples x 3 labels) and the whole
`explain_records` (attention, correlations, faithfulness curves every 12 bins).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ecgxai.data.conditioning import zscore
from ecgxai.explain.core import LimeConfig, ShapConfig, explain_records
from ecgxai.explain.lime_explain import explain_lime
from ecgxai.explain.masking import Masker
from ecgxai.explain.shap_explain import explain_shap, gradient_shap


def build_model(n_classes: int):
    try:
        from ecgxai.model.hybrid import HybridECGNet

        return HybridECGNet(n_classes=n_classes).eval(), "HybridECGNet"
    except ImportError:

        class Small(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = torch.nn.Sequential(
                    torch.nn.Conv1d(12, 32, 7, padding=3),
                    torch.nn.ReLU(),
                    torch.nn.MaxPool1d(16),
                    torch.nn.Conv1d(32, 64, 5, padding=2),
                    torch.nn.ReLU(),
                    torch.nn.AdaptiveAvgPool1d(1),
                    torch.nn.Flatten(),
                    torch.nn.Linear(64, n_classes),
                )

            def forward(self, x):
                logits = self.net(x)
                return logits, torch.full((len(x), x.shape[-1] // 16), 16.0 / x.shape[-1])

        return Small().eval(), "small conv (fallback)"


class Probs(torch.nn.Module):
    """x -> sigmoid(logits): the single-tensor model GradientExplainer needs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.sigmoid(self.model(x)[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=512, help="forward-pass batch size")
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--n-bins", type=int, default=20)
    ap.add_argument("--full", action="store_true", help="also time gradient SHAP and explain_records")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, name = build_model(args.classes)
    probs_model = Probs(model).eval()

    def predict_proba(x):
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), args.batch):
                out.append(probs_model(torch.from_numpy(np.ascontiguousarray(x[i : i + args.batch]))).numpy())
        return np.concatenate(out)

    rng = np.random.default_rng(args.seed)
    t = np.arange(args.samples) / 100.0
    beat = np.sin(2 * np.pi * 1.2 * t) ** 15  # spiky periodic wave plus noise, z-scored like the data
    X = zscore(
        (
            beat[None, None] * rng.uniform(0.3, 1.5, (args.records, 12, 1))
            + 0.1 * rng.standard_normal((args.records, 12, args.samples))
        ).astype(np.float32)
    )
    labels = [list(np.argsort(-p)[:3]) for p in predict_proba(X)]
    shap_cfg, lime_cfg = ShapConfig(), LimeConfig()
    predict_proba(X[:1].repeat(args.batch, 0))  # warm-up: torch kernels, and shap's numba JIT (seconds)
    warm = Masker(X[0], args.n_bins, "zero")
    explain_shap(predict_proba, warm, labels[0], ShapConfig(npermutations=1), seed=0)
    explain_lime(predict_proba, warm, labels[0], LimeConfig(num_samples=50), seed=0)

    def floor(n_evals: int) -> float:
        x = np.repeat(X[:1], min(n_evals, args.batch), 0)
        t0 = time.perf_counter()
        done = 0
        while done < n_evals:
            m = min(args.batch, n_evals - done)
            predict_proba(x[:m])
            done += m
        return time.perf_counter() - t0

    # per method: [wall s, floor wall s, cpu s, floor cpu s, calls per record]
    rows = {k: [0.0, 0.0, 0.0, 0.0, 0] for k in ("shap", "lime")}

    def timed(key, fn):
        w, c = time.perf_counter(), time.process_time()
        res = fn()
        rows[key][0] += time.perf_counter() - w
        rows[key][2] += time.process_time() - c
        w, c = time.perf_counter(), time.process_time()
        floor(res.n_evals)
        rows[key][1] += time.perf_counter() - w
        rows[key][3] += time.process_time() - c
        rows[key][4] = res.n_evals

    load0 = os.getloadavg()[0]
    for i in range(args.records):  # interleave methods and floors so load changes hit both
        masker = Masker(X[i], args.n_bins, "zero")
        timed("shap", lambda m=masker, i=i: explain_shap(predict_proba, m, labels[i], shap_cfg, seed=i))
        timed("lime", lambda m=masker, i=i: explain_lime(predict_proba, m, labels[i], lime_cfg, seed=i))
    n = args.records
    print(
        f"model: {name}, {args.classes} classes, T={args.samples}, {args.threads} threads, batch {args.batch}, "
        f"{n} records x top-3 labels; load average {load0:.1f} -> {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs (other processes inflate wall times; CPU seconds are less sensitive)"
    )
    print(
        f"{'method':<14}{'calls/rec':>10}{'s/rec':>9}{'floor s/rec':>13}{'ratio':>8}"
        f"{'cpu s/rec':>11}{'floor cpu':>11}{'100 rec (s)':>13}"
    )
    total = 0.0
    for k, (s, f, cs, cf, calls) in rows.items():
        total += 100 * s / n
        print(
            f"{k:<14}{calls:>10}{s / n:>9.2f}{f / n:>13.2f}{s / f:>8.2f}{cs / n:>11.2f}{cf / n:>11.2f}"
            f"{100 * s / n:>13.0f}"
        )
    print(f"projection, 100 records x top-3 labels, SHAP + LIME: {total:.0f} s ({total / 60:.1f} min; target < 10 min)")

    if args.full:
        bg = np.ascontiguousarray(X[::-1])
        t0 = time.perf_counter()
        for i in range(n):
            gradient_shap(probs_model, X[i], labels[i], bg, args.n_bins, shap_cfg, seed=i)
        g = (time.perf_counter() - t0) / n
        print(f"{'shap_gradient':<14}{shap_cfg.gradient_nsamples * 3:>10}{g:>9.2f}{'':>13}{'':>8}{100 * g:>13.0f}")

        def attention_fn(x):
            with torch.inference_mode():
                return model(torch.from_numpy(np.ascontiguousarray(x)))[1].numpy()

        edges = (
            model.step_to_sample_edges
            if hasattr(model, "step_to_sample_edges")
            else (lambda T: np.linspace(0, T, T // 16 + 1))
        )
        t0 = time.perf_counter()
        out = explain_records(
            predict_proba,
            X,
            labels,
            args.n_bins,
            "zero",
            attention_fn=attention_fn,
            step_edges=edges,
            seed=args.seed,
            progress=False,
            gradient_model=probs_model,
            gradient_background=bg,
        )
        e = (time.perf_counter() - t0) / n
        print(
            f"explain_records (shap, lime, gradient, attention, faithfulness): {e:.2f} s/record, "
            f"100 records {100 * e:.0f} s; max SHAP additivity error "
            f"{out.meta.loc[out.meta.method == 'shap', 'additivity_error'].max():.2e}"
        )


if __name__ == "__main__":
    main()
