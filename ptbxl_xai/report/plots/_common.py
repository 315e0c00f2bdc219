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
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from ptbxl_xai.data.ptbxl import LEADS

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
    "reliability_diagram": (12.0, 5.5),
    "faithfulness_curves": (11.0, 4.5),
    "beat_attribution_shap": (16.0, 1.0),
    "beat_attribution_lime": (16.0, 1.0),
    "beat_attribution_attention": (16.0, 1.0),
    "delineation_examples": (11.0, 9.8),  # height grows with the records shown
    "known_answer_localisation": (12.0, 3.2),  # height grows with the architectures shown
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
    if n is not None and name == "known_answer_localisation":
        h = h * max(n, 1)
    if n is not None and name == "delineation_examples":
        h = 1.0 + 2.2 * max(n, 1)  # one row of leads per record
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
    """(fpr, tpr, auc) from scikit-learn (every distinct score a threshold); auc NaN without both classes."""
    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return np.zeros(2), np.zeros(2), float("nan")
    fpr, tpr, _ = roc_curve(y, np.asarray(s, dtype=np.float64), drop_intermediate=False)
    return fpr, tpr, float(auc(fpr, tpr))


def precision_recall(y: np.ndarray, s: np.ndarray):
    """(recall ascending, precision, average precision) from scikit-learn, without its (recall 0, precision 1) end."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    if not y.any():
        return np.zeros(1), np.zeros(1), float("nan")
    precision, recall, _ = precision_recall_curve(y, s)
    return recall[:-1][::-1], precision[:-1][::-1], float(average_precision_score(y, s))


def as_thresholds(thresholds, label_names) -> np.ndarray:
    """Scalar, array [C] or mapping label -> threshold (thresholds.json) -> array [C]."""
    if isinstance(thresholds, dict):
        t = thresholds.get("thresholds", thresholds)
        return np.array([float(t[n]) for n in label_names])
    t = np.asarray(thresholds, dtype=np.float64)
    return np.full(len(label_names), float(t)) if t.ndim == 0 else t
