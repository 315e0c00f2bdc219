"""LIME over the binary features of a `FeatureSpace` (12 leads x wave segments or time bins), with `lime.lime_base.LimeBase`.

Perturbations are drawn as in `lime_text` (the closest lime analogue of switching
interpretable components off): each sample masks a uniformly drawn number of bins
(1 .. F-1), so the neighbourhood spans near and far coalitions; the first row is the
record itself.  Distance is the cosine distance to the all-ones row x 100 and the kernel
is lime's exponential kernel sqrt(exp(-d^2 / width^2)) with width 25 (lime_text's default;
the same as lime_image's 0.25 on unscaled cosine distance).  "bernoulli" sampling (each bin
kept with p=0.5, lime_image's scheme) is available but puts all samples at nearly the same
distance, so the kernel no longer localises.
One set of perturbations is evaluated once and serves every label (multi-label output).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np
from lime.lime_base import LimeBase
from sklearn.linear_model import Ridge

from ptbxl_xai.explain.methods.settings import settings_from_any
from ptbxl_xai.explain.spaces.masking import Masker, masked_predict


@dataclass
class LimeConfig:
    num_samples: int = 1000  # model calls per record (the record itself included)
    kernel_width: float = 25.0  # in units of 100 x cosine distance
    sampling: str = "uniform_count"  # or "bernoulli"
    ridge_alpha: float = 1.0  # lime's default surrogate, Ridge(alpha=1)
    chunk: int = 512

    @classmethod
    def from_any(cls, cfg) -> "LimeConfig":
        return settings_from_any(cls, cfg, "lime")


@dataclass
class LimeResult:
    values: np.ndarray  # [labels, leads, features per lead] surrogate weights
    intercept: np.ndarray  # [labels]
    score: np.ndarray  # [labels] weighted R^2 of the local surrogate
    local_pred: np.ndarray  # [labels] surrogate prediction at the record
    n_evals: int = 0


def sample_masks(
    n_features: int, num_samples: int, rng: np.random.Generator, sampling: str = "uniform_count"
) -> np.ndarray:
    """[num_samples, F] binary masks; row 0 is all ones (the record)."""
    if num_samples < 2:
        raise ValueError("num_samples must be >= 2")
    m = num_samples - 1
    if sampling == "uniform_count":
        n_off = rng.integers(1, n_features, size=m)  # 1 .. F-1 bins masked
        # rank of uniform noise picks a random subset of size n_off per row, vectorised
        ranks = rng.random((m, n_features)).argsort(1).argsort(1)
        data = (ranks >= n_off[:, None]).astype(np.float64)
    elif sampling == "bernoulli":
        data = rng.integers(0, 2, size=(m, n_features)).astype(np.float64)
    else:
        raise ValueError(f"sampling must be 'uniform_count' or 'bernoulli', not {sampling!r}")
    return np.vstack([np.ones((1, n_features)), data])


def _kernel(d: np.ndarray, width: float) -> np.ndarray:
    return np.sqrt(np.exp(-(d**2) / width**2))


def explain_lime(
    predict_proba: Callable, masker: Masker, labels: Sequence[int], cfg: LimeConfig | None = None, seed: int = 0
) -> LimeResult:
    """LIME weights of one record for the given label indices (seeded)."""
    cfg = LimeConfig.from_any(cfg)
    rng = np.random.default_rng(seed)
    F = masker.n_features
    data = sample_masks(F, cfg.num_samples, rng, cfg.sampling)
    probs = masked_predict(predict_proba, masker, cfg.chunk)(data)
    # cosine distance to the all-ones row: 1 - sqrt(kept / F) for binary rows
    distances = (1.0 - np.sqrt(data.sum(1) / F)) * 100.0
    base = LimeBase(partial(_kernel, width=cfg.kernel_width), random_state=seed)
    labels = np.asarray(labels, dtype=int)
    vals = np.zeros((len(labels), F))
    inter, score, local = (np.zeros(len(labels)) for _ in range(3))
    for i, lab in enumerate(labels):
        reg = Ridge(alpha=cfg.ridge_alpha, fit_intercept=True)
        inter[i], exp, score[i], lp = base.explain_instance_with_data(
            data, probs, distances, int(lab), F, feature_selection="none", model_regressor=reg
        )
        local[i] = np.ravel(lp)[0]
        for feat, w in exp:
            vals[i, feat] = w
    return LimeResult(vals.reshape(len(labels), masker.leads, masker.n_bins), inter, score, local, len(data))
