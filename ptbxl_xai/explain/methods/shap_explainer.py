"""SHAP over the binary features of a `FeatureSpace` (waves or bins), plus gradient SHAP on the raw input.

Model-agnostic: the game is v(S) = model(record with the bins outside S replaced by the
background); the all-masked record is the single background row (features 0 = masked),
explained point = all ones.  We use `shap.PermutationExplainer` rather than `KernelExplainer`:
  * at 240 features Kernel SHAP's weighted regression is badly under-determined for the
    budgets we can afford (a few thousand evaluations): on a random-weight HybridECGNet,
    relative L2 error vs a 40-permutation reference was 2.1 / 1.1 / 0.79 for Kernel at
    962 / 1924 / 2886 evaluations against 0.38 / 0.28 / 0.23 for Permutation (correlation
    0.40-0.72 vs 0.91-0.96), at equal or lower wall time;
  * antithetic permutations are exact for models with up to pairwise interactions and
    telescope, so local accuracy holds to float rounding whatever the budget;
  * each permutation is one batched model call of 2 * 240 + 1 coalitions.
Every coalition returns all C label probabilities, so one run serves every label.
`ShapConfig(explainer="kernel")` keeps Kernel SHAP available (same evaluation budget unless
`kernel_nsamples` is set, l1_reg off so every feature gets a value) for comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numba
import numpy as np
import torch

from ptbxl_xai.explain.methods.settings import settings_from_any
from ptbxl_xai.explain.spaces.features import FeatureSpace, bin_space
from ptbxl_xai.explain.spaces.masking import Masker, masked_predict

# shap compiles its masking helpers with numba on first use: 10-19 s in every process that explains (each
# checks rule, each app worker), for loops that here take under 0.1 s per record in plain Python against
# hundreds of ms of model calls (benchmarks/shap_jit.py). Decoration reads the flag, so shap's functions
# are plain Python and numba stays on for everyone else.
_jit = numba.config.DISABLE_JIT
numba.config.DISABLE_JIT = True
try:
    import shap
finally:
    numba.config.DISABLE_JIT = _jit


@dataclass
class ShapConfig:
    explainer: str = "permutation"  # or "kernel" (see the module docstring for why not by default)
    npermutations: int = 2  # n x (2F + 1) coalitions per record, plus the record: counts in benchmarks/explain.py
    kernel_nsamples: int | None = None  # None: npermutations * (2F + 1), the permutation budget
    chunk: int = 512  # coalitions turned into signals per predict_proba call
    gradient: bool = False  # run GradientExplainer when a torch model is given (config explain.shap.gradient)
    gradient_nsamples: int = 64  # expected-gradient samples per label and record (config.yaml: measured)
    gradient_background: int = 32  # training records sampled as the reference distribution
    gradient_batch_size: int = 64

    @classmethod
    def from_any(cls, cfg) -> "ShapConfig":
        return settings_from_any(cls, cfg, "shap")


@dataclass
class ShapResult:
    values: np.ndarray  # [labels, leads, features per lead]
    base: np.ndarray  # [labels] f(all masked) or E_background f
    fx: np.ndarray  # [labels] f(record)
    additivity: np.ndarray  # [labels] |sum(values) + base - fx|
    n_evals: int = 0
    per_sample: np.ndarray | None = None  # [labels, leads, T] gradient SHAP before summing into features


class _GlobalSeed:
    """shap samples from numpy's global RNG; seed it for the call and restore the caller's state."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.state = np.random.get_state()
        np.random.seed(self.seed % 2**32)

    def __exit__(self, *exc):
        np.random.set_state(self.state)


def permutation_shap(f: Callable, n_features: int, npermutations: int, seed: int = 0):
    """Shapley values of the binary game f(masks [m, F]) -> [m, C].

    Returns (values [F, C], base [C] = f(zeros), fx [C] = f(ones), evaluations).
    """
    zeros, ones = np.zeros((1, n_features)), np.ones((1, n_features))
    evals = npermutations * (2 * n_features + 1)
    counted = {"n": 0}

    def model(z):
        counted["n"] += len(z)
        return f(z)

    with _GlobalSeed(seed):
        explainer = shap.PermutationExplainer(model, shap.maskers.Independent(zeros, max_samples=1), seed=seed)
        e = explainer(ones, max_evals=evals, silent=True)
    values = np.asarray(e.values[0], dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    base = np.atleast_1d(np.asarray(e.base_values[0], dtype=np.float64))
    fx = np.asarray(f(ones)[0], dtype=np.float64)
    return values, base, fx, counted["n"] + 1


def kernel_shap(f: Callable, n_features: int, nsamples: int, seed: int = 0):
    """Kernel SHAP of the same binary game; returns what `permutation_shap` returns."""
    zeros, ones = np.zeros((1, n_features)), np.ones((1, n_features))
    counted = {"n": 0}

    def model(z):
        counted["n"] += len(z)
        return f(z)

    with _GlobalSeed(seed):
        explainer = shap.KernelExplainer(model, zeros)
        values = explainer.shap_values(ones, nsamples=nsamples, l1_reg=False, silent=True)
    values = np.asarray(values, dtype=np.float64)[0]
    if values.ndim == 1:
        values = values[:, None]
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    return values, base, np.asarray(f(ones)[0], dtype=np.float64), counted["n"] + 1


def explain_shap(
    predict_proba: Callable, masker: Masker, labels: Sequence[int], cfg: ShapConfig | None = None, seed: int = 0
) -> ShapResult:
    """Model-agnostic SHAP (permutation by default) of one record for the given label indices."""
    cfg = ShapConfig.from_any(cfg)
    f = masked_predict(predict_proba, masker, cfg.chunk)
    F = masker.n_features
    if cfg.explainer == "permutation":
        values, base, fx, n = permutation_shap(f, F, cfg.npermutations, seed)
    elif cfg.explainer == "kernel":
        values, base, fx, n = kernel_shap(f, F, cfg.kernel_nsamples or cfg.npermutations * (2 * F + 1), seed)
    else:
        raise ValueError(f"explainer must be 'permutation' or 'kernel', not {cfg.explainer!r}")
    labels = np.asarray(labels, dtype=int)
    v = values[:, labels].T.reshape(len(labels), masker.leads, masker.n_bins)
    add = np.abs(v.reshape(len(labels), -1).sum(1) + base[labels] - fx[labels])
    return ShapResult(v, base[labels], fx[labels], add, n)


def sample_background(X_train: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Reference records for expected gradients, drawn without replacement (seeded)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X_train), size=min(n, len(X_train)), replace=False)
    return np.ascontiguousarray(X_train[np.sort(idx)], dtype=np.float32)


def gradient_shap(
    model,
    x_record: np.ndarray,
    labels: Sequence[int],
    background: np.ndarray,
    n_bins: int | FeatureSpace | None,
    cfg: ShapConfig | None = None,
    seed: int = 0,
) -> ShapResult:
    """Expected-gradients SHAP (`shap.GradientExplainer`) on the raw [leads, T] input, summed into features.

    `n_bins` is a FeatureSpace, a number of equal time bins, or None (values left per sample, [L, leads, T];
    sum them into any space later with `FeatureSpace.sum_samples`, as `per_sample` always holds them).

    `model` is a torch module mapping x [B, leads, T] to one tensor of probabilities [B, C]
    (wrap HybridECGNet so it drops the attention output). Additivity is only approximate
    for this estimator (it is reported, not enforced).
    """
    cfg = ShapConfig.from_any(cfg)
    labels = np.asarray(labels, dtype=int)
    selected = _Columns(model, labels).eval()
    bg = torch.from_numpy(np.ascontiguousarray(background, dtype=np.float32))
    x = torch.from_numpy(np.ascontiguousarray(x_record, dtype=np.float32)[None])
    explainer = shap.GradientExplainer(selected, bg, batch_size=cfg.gradient_batch_size)
    with _GlobalSeed(seed):
        phi = explainer.shap_values(x, nsamples=cfg.gradient_nsamples, rseed=seed)
    phi = np.asarray(phi, dtype=np.float64).reshape(1, *x_record.shape, -1)[0]  # [leads, T, L]
    leads, T = x_record.shape
    per_sample = np.ascontiguousarray(phi.transpose(2, 0, 1))  # [L, leads, T]
    if n_bins is None:
        v = per_sample
    else:
        space = n_bins if isinstance(n_bins, FeatureSpace) else bin_space(T, int(n_bins))
        v = space.sum_samples(per_sample).reshape(len(labels), leads, space.n_segments)
    with torch.no_grad():
        base = selected(bg).double().mean(0).numpy()
        fx = selected(x).double()[0].numpy()
    add = np.abs(v.reshape(len(labels), -1).sum(1) + base - fx)
    return ShapResult(v, base, fx, add, cfg.gradient_nsamples * len(labels), per_sample)


class _Columns(torch.nn.Module):
    """Keep only the explained labels' outputs so GradientExplainer back-propagates L, not C, times."""

    def __init__(self, model, labels):
        super().__init__()
        self.model = model
        self.register_buffer("labels", torch.as_tensor(np.asarray(labels), dtype=torch.long))

    def forward(self, x):
        return self.model(x).index_select(1, self.labels)
