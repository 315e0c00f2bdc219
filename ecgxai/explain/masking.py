"""Turn binary bin masks into ECG signals: the bridge between explainers and the model.

Features are the 12 x n_bins time windows of a record, flattened lead-major
(feature = lead * n_bins + bin, as `ecgxai.data.conditioning.bin_means` lays them out).
A mask value of 1 keeps the window of the record, 0 replaces it by the background.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter1d

BACKGROUNDS = ("zero", "mean", "blur")


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
    raise ValueError(f"background must be one of {BACKGROUNDS}, not {background!r}")


class Masker:
    """Vectorised masks [m, leads*n_bins] -> signals [m, leads, T] for one record."""

    def __init__(
        self,
        x_record: np.ndarray,
        n_bins: int,
        background: str = "zero",
        lead_means=None,
        blur_sigma_s: float = 0.1,
        rate: int = 100,
    ):
        x = np.ascontiguousarray(x_record, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"x_record must be [leads, T], got shape {x.shape}")
        leads, T = x.shape
        if T % n_bins:
            raise ValueError(f"{T} samples do not split into {n_bins} equal bins")
        self.x, self.n_bins, self.leads, self.T = x, int(n_bins), leads, T
        self.width = T // n_bins
        self.background_kind = background
        self.bg = background_signal(x, background, lead_means, blur_sigma_s, rate)
        # bg + mask * (x - bg): one fused broadcast per batch, windows as a trailing axis
        self._bg = self.bg.reshape(leads, n_bins, self.width)
        self._delta = (x - self.bg).reshape(leads, n_bins, self.width)

    @property
    def n_features(self) -> int:
        return self.leads * self.n_bins

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=np.float32)
        if masks.ndim == 1:
            masks = masks[None]
        if masks.shape[1] != self.n_features:
            raise ValueError(f"masks must have {self.n_features} columns, got {masks.shape[1]}")
        m = masks.reshape(-1, self.leads, self.n_bins, 1)
        out = self._bg + m * self._delta
        return out.reshape(-1, self.leads, self.T)


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
