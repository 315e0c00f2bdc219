"""Permutation SHAP and LIME against their budgets, per feature space, on a trained run.

    python benchmarks/explain_convergence.py --results real/results --run hybrid_superdiagnostic \
        [--records 12] [--permutations 1 2 3 5] [--lime-samples 150 300 500 1000] [--seeds 2]

For delineated test-fold records (each for its most probable label) it explains every record on wave
features and on time bins with `ptbxl_xai.explain` at each budget, and compares the maps with a
high-budget reference (--ref-permutations, --ref-lime-samples) of another seed. Printed per space,
method and budget: model calls per record, the median Spearman rank correlation with the reference,
the median relative L2 distance to it, the seed-to-seed Spearman, and seconds per record.
The defaults `explain.shap.npermutations` and `explain.lime.num_samples` are picked from these
figures (README: Explanations, speed): the smallest budget whose median rank correlation with the
reference is >= 0.9 on wave features.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from ptbxl_xai.config import SPLITS
from ptbxl_xai.data.parquet_io import load_parquet_records
from ptbxl_xai.explain.methods.lime_explainer import LimeConfig, explain_lime
from ptbxl_xai.explain.methods.shap_explainer import ShapConfig, explain_shap
from ptbxl_xai.explain.spaces.features import bin_space, space_for_record
from ptbxl_xai.explain.spaces.masking import Masker
from ptbxl_xai.explain.spaces.template import NormalTemplate
from ptbxl_xai.model.checkpoint import load_checkpoint
from ptbxl_xai.model.inference import model_functions
from ptbxl_xai.stages.explain import read_beats_by_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--run", default="hybrid_superdiagnostic")
    ap.add_argument("--records", type=int, default=12)
    ap.add_argument("--permutations", type=int, nargs="+", default=[1, 2, 3, 5])
    ap.add_argument("--lime-samples", type=int, nargs="+", default=[150, 300, 500, 1000])
    ap.add_argument("--ref-permutations", type=int, default=20)
    ap.add_argument("--ref-lime-samples", type=int, default=5000)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--background", default="normal_template", help="zero | blur | normal_template")
    ap.add_argument("--n-bins", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res = Path(a.results)
    rate_dir = next((res / "data").glob("*hz"))
    model, _ = load_checkpoint(res / "models" / a.run / "model.pt")
    predict, _ = model_functions(model)
    x, ids, meta = load_parquet_records(rate_dir, SPLITS["test"])
    beats = read_beats_by_record(next((res / "delineation").glob("*hz")), ids)
    template = (
        NormalTemplate.load(res / "explain" / a.run / "template.npz") if a.background == "normal_template" else None
    )
    rows = [i for i, e in enumerate(ids) if int(e) in beats][: a.records]
    labels = predict(x[rows]).argmax(1)
    T = x.shape[-1]
    spaces = {
        "waves": [space_for_record("waves", T, a.n_bins, beats[int(ids[i])]) for i in rows],
        "bins": [bin_space(T, a.n_bins)] * len(rows),
    }
    print(
        f"run {a.run}: {len(rows)} delineated test records (fold 10, of {len(ids)}) x their most probable label, "
        f"background {a.background}; references: SHAP {a.ref_permutations} permutations, LIME "
        f"{a.ref_lime_samples} samples (seed 1000); {a.seeds} seeds per budget; {a.threads} threads"
    )

    def explain(method, budget, space_name, seed):
        maps, calls, t0 = [], 0, time.perf_counter()
        for k, i in enumerate(rows):
            m = Masker(x[i], spaces[space_name][k], a.background, template=template, rate=meta["sampling_rate"])
            if method == "shap":
                r = explain_shap(predict, m, [labels[k]], ShapConfig(npermutations=budget), seed=seed + k)
            else:
                r = explain_lime(predict, m, [labels[k]], LimeConfig(num_samples=budget), seed=seed + k)
            maps.append(np.ravel(r.values[0]))
            calls += r.n_evals
        return maps, calls / len(rows), (time.perf_counter() - t0) / len(rows)

    print(
        f"{'space':<6} {'method':<5} {'budget':>6} {'calls/rec':>9} {'Spearman':>9} {'L2':>6} {'seed rho':>9} {'s/rec':>6}"
    )
    for space_name in spaces:
        for method, budgets, ref_budget in (
            ("shap", a.permutations, a.ref_permutations),
            ("lime", a.lime_samples, a.ref_lime_samples),
        ):
            ref, _, _ = explain(method, ref_budget, space_name, 1000)
            for b in budgets:
                runs = [explain(method, b, space_name, 100 * s) for s in range(a.seeds)]
                rho = [spearmanr(m, r).statistic for maps, _, _ in runs for m, r in zip(maps, ref)]
                l2 = [
                    np.linalg.norm(m - r) / max(np.linalg.norm(r), 1e-12)
                    for maps, _, _ in runs
                    for m, r in zip(maps, ref)
                ]
                seed_rho = (
                    [spearmanr(p, q).statistic for p, q in zip(runs[0][0], runs[-1][0])] if a.seeds > 1 else [np.nan]
                )
                print(
                    f"{space_name:<6} {method:<5} {b:>6} {runs[0][1]:>9.0f} {np.nanmedian(rho):>9.3f} "
                    f"{np.nanmedian(l2):>6.2f} {np.nanmedian(seed_rho):>9.3f} {np.mean([r[2] for r in runs]):>6.3f}"
                )


if __name__ == "__main__":
    main()
