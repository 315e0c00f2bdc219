"""What shap's numba JIT costs a process that explains, and what plain Python costs per call instead.

    python benchmarks/shap_jit.py [--features 72 240] [--npermutations 2]

Each explaining process (the explain and checks rules, each app worker) pays numba's compilation of
shap's masking helpers on its first permutation-SHAP call. `ptbxl_xai.explain.methods.shap_explainer` imports
shap with numba's JIT off, so those helpers run as plain Python. This prints, in a fresh process for
each mode, the first call (compilation included) and the mean of later calls of permutation SHAP over
a linear game of F features (no model: the explainer's own overhead, which a real record adds to
hundreds of milliseconds of model calls), and checks both modes give the same values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, sys, time
import numpy as np
if sys.argv[1] == "jit":
    import shap  # first: decorated with numba on, as any other importer of shap would have it
from ptbxl_xai.explain.methods.shap_explainer import permutation_shap
out = {}
for F in json.loads(sys.argv[2]):
    W = np.random.default_rng(F).normal(size=(F, 5))
    game = lambda z: np.asarray(z, float) @ W
    t0 = time.perf_counter()
    values, *_ = permutation_shap(game, F, int(sys.argv[3]), 0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for seed in range(1, 6):
        permutation_shap(game, F, int(sys.argv[3]), seed)
    out[F] = dict(first=first, later=(time.perf_counter() - t0) / 5, error=float(abs(values - W).max()))
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=int, nargs="+", default=[72, 240], help="72 = waves, 240 = 20 bins")
    ap.add_argument("--npermutations", type=int, default=2)
    args = ap.parse_args()
    print(
        f"permutation SHAP, {args.npermutations} permutations, a linear game (exact values known); {os.cpu_count()} CPUs"
    )
    print(f"{'mode':<12}{'F':>5}{'first call s':>14}{'later calls s':>15}{'max |error|':>13}")
    for mode in ("jit", "plain"):
        run = subprocess.run(
            [sys.executable, "-c", CHILD, mode, json.dumps(args.features), str(args.npermutations)],
            capture_output=True,
            text=True,
            check=True,
        )
        for F, r in json.loads(run.stdout.strip().splitlines()[-1]).items():
            label = "numba JIT" if mode == "jit" else "plain (ours)"
            print(f"{label:<12}{F:>5}{r['first']:>14.3f}{r['later']:>15.4f}{r['error']:>13.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
