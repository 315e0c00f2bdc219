"""Seconds per record of SHAP and LIME on wave features and on time bins, each against its model-call floor.

    python benchmarks/explain.py [--records 10] [--threads 2] [--batch 64] [--no-fuse] [--full]

Builds the default `ptbxl_xai.model.hybrid.HybridECGNet` (random weights are fine for timing; a small
conv net stands in if the model module is missing), explains each record for its top-3
labels with the default settings in both feature spaces -- waves (12 leads x P/PR/QRS/ST/T/TP,
72 features, from the synthetic records' known beats) and bins (12 x n_bins) -- and prints, per
space and method, seconds per record, the floor (the same number of forward passes, batched, on
unmasked signals) and their ratio, then the projection for 100 records x top-3 labels.
Targets on 2 CPU cores (issue 10): waves SHAP + LIME <= 0.2 s per record, 100 records x top-3
labels <= 1 minute.

Defaults being timed (ptbxl_xai.explain): SHAP npermutations=2 (2 x (2F + 1) + 1 model calls per record of F
features; the counts are printed), LIME num_samples=1000; with --full also gradient SHAP and the whole
`explain_records` on waves + bins (attention, faithfulness curves).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ptbxl_xai.data.conditioning import zscore
from ptbxl_xai.explain.methods.explain_records import LimeConfig, ShapConfig, explain_records
from ptbxl_xai.explain.methods.lime_explainer import explain_lime
from ptbxl_xai.explain.methods.shap_explainer import explain_shap, gradient_shap
from ptbxl_xai.explain.spaces.features import FIDUCIALS, bin_space, wave_space
from ptbxl_xai.explain.spaces.masking import Masker
from ptbxl_xai.model.inference import INFERENCE_BATCH, Probabilities, model_functions


def build_model(n_classes: int):
    try:
        from ptbxl_xai.model.hybrid import HybridECGNet

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=INFERENCE_BATCH, help="forward-pass batch size")
    ap.add_argument("--no-fuse", action="store_true", help="keep Conv1d and BatchNorm1d apart (the unfused model)")
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--n-bins", type=int, default=20)
    ap.add_argument("--lime-samples", type=int, default=LimeConfig().num_samples, help="LIME perturbations per record")
    ap.add_argument("--npermutations", type=int, default=ShapConfig().npermutations, help="SHAP permutations")
    ap.add_argument("--full", action="store_true", help="also time gradient SHAP and explain_records")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, name = build_model(args.classes)
    probs_model = Probabilities(model).eval()
    # the explainers' own model calls: Conv-BN folded, batches of --batch records
    predict_proba, attention_fn = model_functions(model, args.batch, fuse=not args.no_fuse)

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
    # the synthetic beats' fiducials: R where sin(2 pi 1.2 t) = 1, waves at fixed offsets (samples at 100 Hz)
    r = np.round((0.25 + np.arange(20)) / 1.2 * 100).astype(int)
    r = r[(r >= 25) & (r < args.samples - 40)]
    offsets = dict(p_on=-20, p_off=-11, qrs_on=-5, r=0, qrs_off=5, t_on=15, t_off=35)
    beats = np.stack([r + offsets[f] for f in FIDUCIALS], axis=1)
    spaces = {"waves": wave_space(beats, args.samples), "bins": bin_space(args.samples, args.n_bins)}
    shap_cfg = ShapConfig(npermutations=args.npermutations)
    lime_cfg = LimeConfig(num_samples=args.lime_samples)
    predict_proba(X[:1].repeat(args.batch, 0))  # warm-up: torch kernels' first calls

    for space in spaces.values():  # first calls per feature count (lime, shap's explainer set-up): warm every space
        warm = Masker(X[0], space, "zero")
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

    # per space and method: [wall s, floor wall s, cpu s, floor cpu s, calls per record]
    rows = {(sp, k): [0.0, 0.0, 0.0, 0.0, 0] for sp in spaces for k in ("shap", "lime")}

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
    for i in range(args.records):  # interleave spaces, methods and floors so load changes hit all
        for sp, space in spaces.items():
            masker = Masker(X[i], space, "zero")
            timed((sp, "shap"), lambda m=masker, i=i: explain_shap(predict_proba, m, labels[i], shap_cfg, seed=i))
            timed((sp, "lime"), lambda m=masker, i=i: explain_lime(predict_proba, m, labels[i], lime_cfg, seed=i))
    n = args.records
    print(
        f"model: {name}, {args.classes} classes, T={args.samples}, {args.threads} threads, batch {args.batch}, "
        f"{n} records x top-3 labels; load average {load0:.1f} -> {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs (other processes inflate wall times; CPU seconds are less sensitive)"
    )
    print(
        f"{'space':<7}{'method':<14}{'features':>9}{'calls/rec':>10}{'s/rec':>9}{'floor s/rec':>13}{'ratio':>8}"
        f"{'cpu s/rec':>11}{'floor cpu':>11}{'100 rec (s)':>13}"
    )
    totals = {}
    for (sp, k), (s, f, cs, cf, calls) in rows.items():
        totals[sp] = totals.get(sp, 0.0) + s / n
        print(
            f"{sp:<7}{k:<14}{spaces[sp].n_features:>9}{calls:>10}{s / n:>9.3f}{f / n:>13.3f}{s / f:>8.2f}"
            f"{cs / n:>11.3f}{cf / n:>11.3f}{100 * s / n:>13.1f}"
        )
    for sp, t in totals.items():
        floor_t = sum(rows[(sp, k)][1] for k in ("shap", "lime")) / n
        calls = sum(rows[(sp, k)][4] for k in ("shap", "lime"))
        print(
            f"{sp}: SHAP + LIME {t:.3f} s/record (floor {floor_t:.3f} = {calls} calls x "
            f"{1e3 * floor_t / calls:.2f} ms); 100 records x top-3 labels {100 * t:.0f} s "
            f"({100 * t / 60:.2f} min)" + ("; targets 0.2 s/record, 1 min" if sp == "waves" else "")
        )

    if args.full:
        bg = np.ascontiguousarray(X[::-1])
        t0 = time.perf_counter()
        for i in range(n):
            gradient_shap(probs_model, X[i], labels[i], bg, spaces["waves"], shap_cfg, seed=i)
        g = (time.perf_counter() - t0) / n
        print(f"{'shap_gradient':<14}{shap_cfg.gradient_nsamples * 3:>10}{g:>9.2f}{'':>13}{'':>8}{100 * g:>13.0f}")

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
            spaces=[[spaces["waves"], spaces["bins"]]] * n,
        )
        e = (time.perf_counter() - t0) / n
        print(
            f"explain_records on waves + bins (shap, lime, gradient, attention, faithfulness): {e:.2f} s/record, "
            f"100 records {100 * e:.0f} s; max SHAP additivity error "
            f"{out.meta.loc[out.meta.method == 'shap', 'additivity_error'].max():.2e}"
        )


if __name__ == "__main__":
    main()
