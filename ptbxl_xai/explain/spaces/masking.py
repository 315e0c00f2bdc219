"""Turn binary feature masks into ECG signals: the bridge between explainers and the model.

Features are the lead x segment cells of a `FeatureSpace` (waves: 12 x P/PR/QRS/ST/T/TP over all
beats; bins: 12 x n_bins equal windows), flattened lead-major. A mask value of 1 keeps the record's
samples of that feature, 0 replaces them by the background.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ptbxl_xai.explain.spaces.features import FeatureSpace, bin_space
from ptbxl_xai.explain.spaces.template import NormalTemplate, normal_template_background

BACKGROUNDS = ("zero", "mean", "blur", "normal_template")


def background_signal(
    x_record: np.ndarray, background: str, lead_means=None, blur_sigma_s: float = 0.1, rate: int = 100
) -> np.ndarray:
    """The all-masked record [leads, T] for a background kind.

    zero: 0 everywhere, the z-score mean of every lead.
    mean: the training folds' per-lead mean ([leads] or a mean waveform [leads, T]).
    blur: a Gaussian-blurred copy of the record (keeps the baseline, removes the waves).
    """
    x = np.asarray(x_record, dtype=np.float32)
    if background == "zero":
        return np.zeros_like(x)
    if background == "mean":
        if lead_means is None:
            raise ValueError("background 'mean' needs lead_means (per-lead means of the training folds)")
        m = np.asarray(lead_means, dtype=np.float32)
        if m.ndim == 1:
            m = m[:, None]
        return np.ascontiguousarray(np.broadcast_to(m, x.shape), dtype=np.float32)
    if background == "blur":
        if blur_sigma_s <= 0:
            raise ValueError("blur_sigma_s must be > 0")
        return gaussian_filter1d(x, sigma=blur_sigma_s * rate, axis=-1, mode="nearest").astype(np.float32)
    if background == "normal_template":
        raise ValueError("background 'normal_template' needs the record's feature space and a NormalTemplate (Masker)")
    raise ValueError(f"background must be one of {BACKGROUNDS}, not {background!r}")


class Masker:
    """Vectorised masks [m, n_features] -> signals [m, leads, T] for one record.

    `space` is a FeatureSpace or, for time bins, their number. `background` names a kind
    (see `background_signal`) or is the all-masked record itself, an array [leads, T] (e.g. a
    normal-beat template fitted to this record's segments). "normal_template" needs `template`
    (a `NormalTemplate`): each segment of the record becomes the NORM template's, stretched to it.
    """

    def __init__(
        self,
        x_record: np.ndarray,
        space: FeatureSpace | int,
        background: str | np.ndarray = "zero",
        lead_means=None,
        blur_sigma_s: float = 0.1,
        rate: int = 100,
        template: NormalTemplate | None = None,
    ):
        x = np.ascontiguousarray(x_record, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"x_record must be [leads, T], got shape {x.shape}")
        leads, T = x.shape
        if not isinstance(space, FeatureSpace):
            space = bin_space(T, int(space))
        if (space.n_leads, space.T) != (leads, T):
            raise ValueError(f"feature space is {space.n_leads} leads x {space.T} samples, record is {x.shape}")
        self.x, self.space, self.leads, self.T = x, space, leads, T
        if isinstance(background, str) and background == "normal_template":
            if template is None:
                raise ValueError("background 'normal_template' needs a NormalTemplate (explain/template.py)")
            self.background_kind = background
            self.bg = normal_template_background(x, space, template)
        elif isinstance(background, str):
            self.background_kind = background
            self.bg = background_signal(x, background, lead_means, blur_sigma_s, rate)
        else:
            self.background_kind = "custom"
            self.bg = np.ascontiguousarray(background, dtype=np.float32)
            if self.bg.shape != x.shape:
                raise ValueError(f"background array must have the record's shape {x.shape}, got {self.bg.shape}")
        self._delta = x - self.bg
        if space.kind == "bins":  # equal windows as a trailing axis: one fused broadcast, ~5x faster
            w = T // space.n_segments
            self._bins = (self.bg.reshape(leads, space.n_segments, w), self._delta.reshape(leads, space.n_segments, w))

    @property
    def n_features(self) -> int:
        return self.space.n_features

    @property
    def n_bins(self) -> int:
        """Features per lead (time bins, or the six wave segments)."""
        return self.space.n_segments

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        # bg + mask * (x - bg), the mask spread to the samples of its feature: one broadcast per batch
        if self.space.kind == "bins":
            masks = np.asarray(masks, dtype=np.float32)
            if masks.shape[-1] != self.n_features:
                raise ValueError(f"masks must have {self.n_features} columns, got {masks.shape[-1]}")
            masks = masks.reshape(-1, self.leads, self.space.n_segments, 1)
            bg, delta = self._bins
            return (bg + masks * delta).reshape(-1, self.leads, self.T)
        return self.bg + self.space.sample_masks(masks) * self._delta


def masked_predict(predict_proba: Callable, masker: Masker, chunk: int = 512) -> Callable:
    """f(masks [m, F]) -> probs [m, C]: build signals chunk by chunk to bound memory (48 kB each)."""

    def f(masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks)
        if masks.ndim == 1:
            masks = masks[None]
        outs = [
            np.asarray(predict_proba(masker(masks[i : i + chunk])), dtype=np.float64)
            for i in range(0, len(masks), chunk)
        ]
        return np.concatenate(outs) if outs else np.zeros((0, 0))

    return f


def record_backgrounds(
    x: np.ndarray,
    kinds: Sequence[str],
    lead_means=None,
    blur_sigma_s: float = 0.1,
    rate: int = 100,
    templates=None,
    space: FeatureSpace | None = None,
) -> dict[str, np.ndarray]:
    """The all-masked record [leads, T] of each background kind for record x.

    `templates`: {kind: callable(x, space) -> [leads, T]} for kinds the masking module does not build
    (e.g. the normal-beat template fitted to the record's segments).
    """
    out = {}
    for kind in kinds:
        if templates and kind in templates:
            out[kind] = np.asarray(templates[kind](x, space), dtype=np.float32)
        else:
            out[kind] = background_signal(x, kind, lead_means, blur_sigma_s, rate)
    return out
