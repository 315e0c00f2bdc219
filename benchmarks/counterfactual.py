"""Seconds and model calls per record-label of the feature counterfactual search, on a trained run.

    python benchmarks/counterfactual.py RESULTS [--run hybrid] [--records 20] [--configfile config.yaml ...]

Takes the first --records test records of RESULTS's run with at least one predicted positive non-NORM
label, asks `TrainedRun.counterfactuals` for every such label (waves where the delineation allows,
the NORM template as the normal version where the run has one), and prints per record-label seconds,
model calls, flip rate and the number of features changed. Target (issue 21): <= 1 s per record-label
on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import yaml

from ptbxl_xai.layout import Layout
from ptbxl_xai.stages.explain import read_beats_by_record
from ptbxl_xai.trained_run import TrainedRun


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--run", default="hybrid")
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--configfile", nargs="+", default=["config.yaml"])
    args = ap.parse_args()
    config: dict = {}
    for f in args.configfile:
        config.update(yaml.safe_load(open(f)) or {})
    run = TrainedRun.from_results(args.results, args.run, config)
    x, ids = run.test_signals()
    from ptbxl_xai.model.inference import model_functions

    p = model_functions(run.model)[0](x)
    called = [
        [n for j, n in enumerate(run.label_names) if p[i, j] >= run.thresholds[j] and n != "NORM"]
        for i in range(len(x))
    ]
    keep = [i for i, c in enumerate(called) if c][: args.records]
    beats = read_beats_by_record(Layout(args.results).delineation(run.rate), ids[keep].tolist())
    cfg = {"features": "waves", "background": "blur", "blur_sigma_s": 0.1}
    t0 = time.perf_counter()
    df = run.counterfactuals(x[keep], [called[i] for i in keep], ids[keep], cfg, beats=beats)
    secs = time.perf_counter() - t0
    n = len(df)
    print(f"run {args.run}: {len(keep)} test records, {n} record-labels called positive (non-NORM)")
    print(f"spaces: {df['space'].value_counts().to_dict()}; backgrounds: {df['background'].value_counts().to_dict()}")
    print(f"seconds per record-label: {secs / max(n, 1):.3f} (total {secs:.1f} s)")
    print(f"model calls per record-label: median {df['n_calls'].median():.0f}, max {df['n_calls'].max()}")
    flipped = df[df["valid"]]
    print(
        f"flipped: {len(flipped)}/{n} ({len(flipped) / max(n, 1):.0%}); status {df['status'].value_counts().to_dict()}"
    )
    if len(flipped):
        q = np.percentile(flipped["n_changed"], [25, 50, 75])
        print(f"features changed when flipped: median {q[1]:.0f} (IQR {q[0]:.0f}-{q[2]:.0f}) of 72")
        print(f"other decisions changed: {(flipped['others_changed'] != '').mean():.0%} of flips")
    for s in df["sentence"].head(8):
        print("  ", s)


if __name__ == "__main__":
    main()
