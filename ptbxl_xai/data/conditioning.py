"""Signal conditioning on batches of records: zero-phase filters, z-score, fixed length, bins.

All functions take and return float32 arrays shaped [n, leads, samples] so a whole part of a
dataset is processed in one vectorised call.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import signal as sps

from ptbxl_xai.config import FilterSettings  # noqa: F401  (re-exported: the settings live with the config)


@functools.lru_cache(maxsize=16)  # one design per settings: the live app filters one record per request
def _sos(settings: FilterSettings) -> tuple[np.ndarray, ...]:
    stages = []
    if settings.baseline:
        stages.append(
            sps.butter(settings.baseline_order, settings.baseline_hz, btype="highpass", fs=settings.rate, output="sos")
        )
    if settings.bandpass:
        stages.append(
            sps.butter(
                settings.bandpass_order,
                [settings.low_hz, settings.high_hz],
                btype="bandpass",
                fs=settings.rate,
                output="sos",
            )
        )
    return tuple(stages)


def filter_signals(x: np.ndarray, settings: FilterSettings) -> np.ndarray:
    """Zero-phase (forward-backward) SOS filtering along time."""
    shape = x.shape
    x = x.reshape(-1, shape[-1])  # 2-D along the contiguous axis: ~1.6x faster in scipy
    for sos in _sos(settings):
        x = sps.sosfiltfilt(sos.copy(), x, axis=-1)  # a copy: the cached design stays as designed
    return x.reshape(shape).astype(np.float32, copy=False)


def fix_length(x: np.ndarray, samples: int, crop: str = "center") -> np.ndarray:
    """Crop (centre or start) or zero-pad at the end to exactly `samples`."""
    n = x.shape[-1]
    if n > samples:
        start = (n - samples) // 2 if crop == "center" else 0
        return x[..., start : start + samples]
    if n < samples:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, samples - n)]
        return np.pad(x, pad)
    return x


def zscore_params(x: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) [..., leads] of the per-lead z-score: z = (x - offset) / scale."""
    return np.maximum(x.std(axis=-1), eps), x.mean(axis=-1)


def zscore(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Per record and lead: zero mean, unit standard deviation over time."""
    scale, offset = zscore_params(x, eps)
    return ((x - offset[..., None]) / scale[..., None]).astype(np.float32, copy=False)


def flat_leads(x: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Boolean [n, leads]: leads whose peak-to-peak amplitude (mV) is below `tol`."""
    return np.ptp(x, axis=-1) < tol


def bin_means(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Mean of each of `n_bins` equal time windows per lead: [n, leads, samples] -> [n, leads, n_bins]."""
    n, leads, samples = x.shape
    if samples % n_bins:
        raise ValueError(f"{samples} samples do not split into {n_bins} equal bins")
    return x.reshape(n, leads, n_bins, samples // n_bins).mean(axis=-1, dtype=np.float32)


def condition_scaled(x: np.ndarray, settings: FilterSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full per-record chain on a batch of equal-length raw records (mV).

    Returns (conditioned [n, leads, samples], lead_scale [n, leads], lead_offset [n, leads]),
    all float32, such that mV = conditioned * lead_scale + lead_offset (the z-score's std and
    mean; 1 and 0 without z-score). Zero padding of a short record is padding in the
    conditioned values, so padded samples map to the lead's mean, not to 0 mV.
    """
    x = filter_signals(x, settings)
    x = fix_length(x, min(x.shape[-1], settings.samples), settings.crop)  # crop only
    scale = np.ones(x.shape[:-1], dtype=np.float32)
    offset = np.zeros(x.shape[:-1], dtype=np.float32)
    # train_standard: kept in mV here; preprocess standardises every part once the training folds' scaler is fitted
    if settings.zscore and getattr(settings, "normalize", "record") == "record":  # before padding (unbiased stats)
        scale, offset = (a.astype(np.float32) for a in zscore_params(x))
        x = zscore(x)
    x = fix_length(x, settings.samples, settings.crop)
    return np.ascontiguousarray(x, dtype=np.float32), scale, offset


def condition(x: np.ndarray, settings: FilterSettings) -> np.ndarray:
    """The full per-record chain on a batch of equal-length raw records (mV), without the scales."""
    return condition_scaled(x, settings)[0]


def to_mv(x: np.ndarray, lead_scale: np.ndarray, lead_offset: np.ndarray) -> np.ndarray:
    """Conditioned signals [..., leads, samples] back to mV with their per-lead scale and offset."""
    return (x * lead_scale[..., None] + lead_offset[..., None]).astype(np.float32, copy=False)
