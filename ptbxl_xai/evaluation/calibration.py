"""Calibration of predicted probabilities: Brier score, expected calibration error, reliability bins.

Per label, with records weighted by w (1 for the point estimate, bootstrap counts otherwise):
- Brier = sum_i w_i (p_i - y_i)^2 / sum_i w_i;
- ECE = sum_k |sum_{i in bin k} w_i (p_i - y_i)| / sum_i w_i over `n_bins` equal-width probability
  bins, i.e. the bin-size-weighted gap between mean probability and observed frequency.
Overall values are macro means over labels (see ptbxl_xai.evaluation.metrics).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

N_BINS = 10


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def brier_ece(y, p, w, n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Per-label Brier score and ECE for each weight row of w [B, n] -> ([B, C], [B, C])."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    n, C = y.shape
    W = w.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        brier = (w @ (p - y) ** 2) / W
        onehot = _bins(p, n_bins)[..., None] == np.arange(n_bins)  # [n, C, K]
        gaps = w @ (onehot * (p - y)[..., None]).reshape(n, C * n_bins)  # [B, C*K]
        ece = np.abs(gaps.reshape(len(w), C, n_bins)).sum(2) / W
    return brier, ece


def per_label_calibration(y, p, n_bins: int = N_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(Brier [C], ECE [C]) of the test records."""
    b, e = brier_ece(y, p, np.ones((1, len(np.asarray(y)))), n_bins)
    return b[0], e[0]


def reliability_bins(y, p, labels=None, n_bins: int = N_BINS) -> pd.DataFrame:
    """Reliability-diagram points: per label ('all' = every record-label pair pooled) and bin,
    the bin range, records in it, mean predicted probability and observed frequency."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    names = [str(s) for s in (labels if labels is not None else range(y.shape[1]))]
    rows = []
    cols = [("all", y.ravel(), p.ravel())] + [(names[c], y[:, c], p[:, c]) for c in range(y.shape[1])]
    for name, yc, pc in cols:
        b = _bins(pc, n_bins)
        for k in range(n_bins):
            m = b == k
            rows.append(
                {
                    "label": name,
                    "bin_low": k / n_bins,
                    "bin_high": (k + 1) / n_bins,
                    "n": int(m.sum()),
                    "mean_prob": float(pc[m].mean()) if m.any() else np.nan,
                    "observed": float(yc[m].mean()) if m.any() else np.nan,
                }
            )
    return pd.DataFrame(rows)
