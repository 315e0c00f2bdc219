"""Beat-aligned explanation figures (Figure 2 redone): attribution drawn on the median beat of each lead.

A clinician reads P, PR, QRS, ST and T lead by lead on an average complex. For each label, the records
explained for it on wave features give a median beat per lead (R-aligned windows, median over beats,
then over records, in mV where the data carry the scale) and the mean attribution of each segment of
each lead; the segment is shaded with that value on the beat. Bender et al. 2023 average relevance over
the beat the same way.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, TwoSlopeNorm

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.explain.spaces.features import FIDUCIALS, SEGMENTS, _beat_array, segment_labels
from ptbxl_xai.report.plots._common import figure, save

# 0.4 s before R holds the P onset at PR intervals up to ~0.3 s; 0.6 s after R holds the T end at QT ~0.55 s.
BEFORE_S, AFTER_S = 0.4, 0.6
BEAT_METHODS = ("shap", "lime", "attention")
MAX_LABELS = 6  # rows per figure: the labels explained most often on waves


def record_median_beat(x: np.ndarray, beats, rate: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(median beat [leads, W], median fiducials [7] relative to the window start, -1 if absent) or None.

    Windows run BEFORE_S before to AFTER_S after each R; beats whose window leaves the record are skipped.
    Each lead's beat is referred to its isoelectric PR segment (P offset to QRS onset; without them,
    the 40 ms ending 60 ms before R), as an ECG is read: ST and T deviations are then relative to the
    baseline of that record, not to whatever offset the filtered record has, before records are pooled.
    """
    b = _beat_array(beats)
    pre, post = int(round(BEFORE_S * rate)), int(round(AFTER_S * rate))
    r = b[:, FIDUCIALS.index("r")]
    ok = (r - pre >= 0) & (r + post < x.shape[1])
    if not ok.any():
        return None
    idx = r[ok][:, None] + np.arange(-pre, post + 1)[None, :]  # [beats, W]
    beat = np.median(x[:, idx], axis=1)  # [leads, W]
    rel = np.where(b[ok] >= 0, b[ok] - (r[ok][:, None] - pre), np.nan)
    rel = np.where((rel >= 0) & (rel <= pre + post), rel, np.nan)
    fid = np.full(len(FIDUCIALS), -1.0)
    enough = np.mean(np.isfinite(rel), axis=0) >= 0.5
    if enough.any():
        fid[enough] = np.nanmedian(rel[:, enough], axis=0)
    p_off, qrs_on = fid[FIDUCIALS.index("p_off")], fid[FIDUCIALS.index("qrs_on")]
    if 0 <= p_off < qrs_on:
        lo, hi = int(round(p_off)), int(round(qrs_on)) + 1
    else:
        hi = pre - int(round(0.06 * rate)) + 1
        lo = max(0, hi - max(1, int(round(0.04 * rate))))
    return beat - np.median(beat[:, lo:hi], axis=1, keepdims=True), fid


def label_beat_profiles(
    attributions: pd.DataFrame,
    signals: Mapping[int, np.ndarray],
    beats: Mapping[int, pd.DataFrame],
    rate: int,
    method: str,
) -> list[dict]:
    """Per label (most explained first): median beat over its wave-explained records and the mean
    attribution per lead and segment. Each dict: label, n_records, beat [leads, W], segment_of_sample [W]
    (or None), values [leads, n_segments], t_s [W] (time from R)."""
    rows = attributions[(attributions["method"] == method) & (attributions.get("feature_space") == "waves")]
    out = []
    counts = rows.groupby("label")["ecg_id"].nunique().sort_values(ascending=False, kind="stable")
    for label in counts.index[:MAX_LABELS]:
        g = rows[rows["label"] == label]
        ids = [int(e) for e in g["ecg_id"].unique() if int(e) in signals and int(e) in beats]
        med = [record_median_beat(signals[e], beats[e], rate) for e in ids]
        med = [m for m in med if m is not None]
        if not med:
            continue
        beat = np.median(np.stack([m[0] for m in med]), axis=0)
        fid = np.stack([m[1] for m in med]).astype(float)
        fid[fid < 0] = np.nan
        fid_med = np.where(
            np.mean(np.isfinite(fid), 0) >= 0.5, np.nanmedian(np.where(np.isfinite(fid), fid, np.nan), 0), -1
        )
        W = beat.shape[1]
        try:
            seg, _ = segment_labels(np.round(np.nan_to_num(fid_med, nan=-1))[None].astype(int), W)
        except ValueError:
            seg = None
        values = (
            g.pivot_table(index="lead", columns="feature", values="value", aggfunc="mean")
            .reindex(index=list(LEADS), columns=list(SEGMENTS))
            .to_numpy()
        )
        out.append(
            dict(
                label=label,
                n_records=len(med),
                beat=beat,
                segment_of_sample=seg,
                values=values,
                t_s=(np.arange(W) - int(round(BEFORE_S * rate))) / rate,
            )
        )
    return out


def beat_attribution(
    attributions: pd.DataFrame,
    signals: Mapping[int, np.ndarray],
    beats: Mapping[int, pd.DataFrame],
    rate: int,
    method: str,
    out_stem,
    units: str = "mV",
) -> list[str]:
    """Rows: labels; columns: the 12 leads. Each panel: the label's median beat of that lead with each
    wave segment shaded by the mean attribution of that lead and segment (`method`)."""
    profiles = label_beat_profiles(attributions, signals, beats, rate, method)
    name = f"beat_attribution_{method}"
    with figure(name, n=max(1, len(profiles))) as fig:
        if not profiles:
            ax = fig.subplots()
            ax.axis("off")
            ax.text(
                0.5,
                0.5,
                f"No record was explained on wave features for {method}\n"
                "(no delineation, or every record fell back to time bins).",
                ha="center",
                va="center",
            )
            return save(fig, out_stem)
        vals = np.concatenate([p["values"].ravel() for p in profiles])
        vals = vals[np.isfinite(vals)]
        signed = method != "attention"
        lim = float(np.max(np.abs(vals))) if vals.size else 1.0
        lim = lim or 1.0
        if signed:
            norm, cmap = TwoSlopeNorm(0.0, -lim, lim), colormaps["RdBu_r"]
        else:
            norm, cmap = Normalize(0.0, lim), colormaps["Greens"]
        # one amplitude scale per row, as on ECG paper: leads are compared in mV, not each stretched to fit
        axes = fig.subplots(len(profiles), len(LEADS), sharex=True, sharey="row", squeeze=False)
        for row, p in zip(axes, profiles):
            seg = p["segment_of_sample"]
            t = p["t_s"]
            for li, ax in enumerate(row):
                if seg is not None:
                    change = np.flatnonzero(np.diff(seg)) + 1
                    starts, ends = np.r_[0, change], np.r_[change, len(seg)]
                    half = 0.5 / rate
                    for a, b in zip(starts, ends):
                        v = p["values"][li, seg[a]]
                        if np.isfinite(v):
                            ax.axvspan(t[a] - half, t[b - 1] + half, color=cmap(norm(v)), lw=0)
                ax.axhline(0.0, color="0.55", lw=0.5, ls=":")  # the PR-segment baseline
                ax.plot(t, p["beat"][li], color="black", lw=0.8)
                ax.set_xticks([0.0])
                ax.tick_params(labelsize=6)
                if li:
                    ax.tick_params(labelleft=False)
                if p is profiles[0]:
                    ax.set_title(LEADS[li], fontsize=8)
            row[0].set_ylabel(f"{p['label']}\n(n={p['n_records']})\n{units}", fontsize=7)
        fig.colorbar(
            ScalarMappable(norm, cmap),
            ax=axes,
            shrink=0.6,
            label=f"mean {method} attribution of the segment" + ("" if signed else " (coverage-normalised)"),
        )
        fig.suptitle(
            f"{method}: mean attribution per lead and wave segment on the label's median beat "
            f"(R at 0 s, window {-BEFORE_S:.1f} to {AFTER_S:.1f} s)"
        )
        return save(fig, out_stem)
