"""Shared plumbing for the figures: style, colours, saving, time axes and numpy ROC/PR."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ecgxai.data.ptbxl import LEADS

DPI = 150
PALETTE = sns.color_palette("colorblind")
# One colour per explanation method, the same in every figure.
METHOD_COLORS = {
    "shap": PALETTE[0],
    "lime": PALETTE[1],
    "attention": PALETTE[2],
    "shap_gradient": PALETTE[4],
    "random": PALETTE[7],
}
REFERENCE_COLOR = PALETTE[3]  # vermillion: published reference values

# Inches; PNG pixels = size x DPI exactly (figures are saved without tight cropping).
FIGSIZES = {
    "fig1_attention_distribution": (10.0, 7.0),
    "fig2_shap_heatmap": (10.0, 7.5),
    "fig3_shap_attention_alignment": (12.0, 7.5),
    "roc_pr_curves": (11.0, 5.0),
    "training_curves": (13.0, 4.0),
    "per_label_bars": (11.0, 4.5),
    "error_analysis": (14.0, 6.5),
    "faithfulness_curves": (11.0, 4.5),
    "beat_attribution_shap": (16.0, 1.0),
    "beat_attribution_lime": (16.0, 1.0),
    "beat_attribution_attention": (16.0, 1.0),
}


def figsize(name: str, n: int | None = None) -> tuple[float, float]:
    """Figure size in inches; bar/heatmap figures grow with the number of labels shown (n)."""
    w, h = FIGSIZES[name]
    if n is not None and name == "per_label_bars":
        h = max(h, 0.3 * n + 1.5)
    if n is not None and name.startswith("beat_attribution_"):
        h = 1.7 * n + 1.2
    if n is not None and name == "faithfulness_curves":
        h = h * max(1, n)
    if n is not None and name == "error_analysis":
        h = max(h, 0.38 * n + 1.5)
    return w, h


@contextmanager
def figure(name: str, n: int | None = None):
    """A constrained-layout Figure on the non-interactive Agg canvas, styled, never registered
    with pyplot (so nothing is left open whatever the user's backend)."""
    rc = {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "figure.titlesize": 12,
        "pdf.fonttype": 42,
    }
    with sns.axes_style("whitegrid"), matplotlib.rc_context(rc):
        fig = Figure(figsize=figsize(name, n), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def save(fig: Figure, out_stem) -> list[str]:
    """<stem>.png (150 dpi) and <stem>.pdf; returns both paths."""
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")
    fig.savefig(png, dpi=DPI)
    fig.savefig(pdf, metadata={"CreationDate": None})  # reproducible bytes across reruns
    fig.clear()
    return [str(png), str(pdf)]


def bin_edges_s(n_bins: int, length_s: float) -> np.ndarray:
    return np.linspace(0.0, float(length_s), int(n_bins) + 1)


def bin_centres_s(n_bins: int, length_s: float) -> np.ndarray:
    e = bin_edges_s(n_bins, length_s)
    return (e[:-1] + e[1:]) / 2


def n_bins_of(attributions: pd.DataFrame) -> int:
    return int(attributions["bin"].max()) + 1


def lead_order(leads) -> list:
    """Leads in the standard 12-lead order (case-insensitive), unknown ones after, as found."""
    rank = {name.upper(): i for i, name in enumerate(LEADS)}
    found = list(dict.fromkeys(leads))
    return sorted(found, key=lambda x: (rank.get(str(x).upper(), len(rank)), found.index(x)))


def attention_profiles(attributions: pd.DataFrame) -> pd.DataFrame:
    """Attention rows -> one value per (ecg_id, label, bin): the profile is repeated over leads."""
    att = attributions[attributions["method"] == "attention"]
    if att.empty:
        raise ValueError("no attention rows in the attributions (method == 'attention')")
    return att.groupby(["ecg_id", "label", "bin"], as_index=False, sort=True)["value"].first()


def method_maps(attributions: pd.DataFrame, method: str) -> pd.DataFrame:
    """Rows of one method; a clear error when it is absent."""
    rows = attributions[attributions["method"] == method]
    if rows.empty:
        raise ValueError(f"no {method!r} rows in the attributions")
    return rows


def roc(y: np.ndarray, s: np.ndarray):
    """(fpr, tpr, auc) with ties handled as one threshold (as sklearn's roc_curve)."""
    tps, fps = _cumulative(y, s)
    P, N = tps[-1], fps[-1]
    tpr = np.r_[0.0, tps / P] if P else np.zeros(len(tps) + 1)
    fpr = np.r_[0.0, fps / N] if N else np.zeros(len(fps) + 1)
    auc = float(np.trapezoid(tpr, fpr)) if P and N else float("nan")
    return fpr, tpr, auc


def precision_recall(y: np.ndarray, s: np.ndarray):
    """(recall, precision, average precision); AP = sum over thresholds of dRecall * precision."""
    tps, fps = _cumulative(y, s)
    P = tps[-1]
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / P if P else np.zeros_like(tps)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision)) if P else float("nan")
    return recall, precision, ap


def _cumulative(y, s):
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(y)[last].astype(np.float64)
    return tps, (last + 1) - tps


def as_thresholds(thresholds, label_names) -> np.ndarray:
    """Scalar, array [C] or mapping label -> threshold (thresholds.json) -> array [C]."""
    if isinstance(thresholds, dict):
        t = thresholds.get("thresholds", thresholds)
        return np.array([float(t[n]) for n in label_names])
    t = np.asarray(thresholds, dtype=np.float64)
    return np.full(len(label_names), float(t)) if t.ndim == 0 else t
