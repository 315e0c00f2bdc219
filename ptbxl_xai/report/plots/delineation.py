"""Delineated example records: the filtered signal in mV with the global P, QRS and T boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.report.plots._common import PALETTE, figure, save

WAVE_SPANS = (
    ("P", "p_on", "p_off", PALETTE[2]),
    ("QRS", "qrs_on", "qrs_off", PALETTE[0]),
    ("T", "t_on", "t_off", PALETTE[1]),
)
SHOWN_LEADS = ("II", "V2", "V5")


def pick_examples(summary: pd.DataFrame, n: int = 4) -> list[int]:
    """Records worth seeing: typical (median heart rate), the widest QRS, the most irregular
    rhythm, and a failed record if there is one; distinct, deterministic."""
    ok = summary[summary["status"] == "ok"].dropna(subset=["heart_rate_bpm"])
    picks: list[int] = []

    def add(frame):
        for ecg_id in frame["ecg_id"]:
            if int(ecg_id) not in picks:
                picks.append(int(ecg_id))
                return

    if len(ok):
        hr = ok["heart_rate_bpm"]
        add(ok.iloc[(hr - hr.median()).abs().argsort(kind="stable")])
        add(ok.sort_values(["qrs_ms", "ecg_id"], ascending=[False, True], na_position="last"))
        add(ok.sort_values(["rr_irregularity", "ecg_id"], ascending=[False, True], na_position="last"))
    failed = summary[summary["status"] == "failed"]
    if len(failed):
        add(failed)
    if len(ok):
        add(ok.iloc[(ok["frac_delineated"]).argsort(kind="stable")])
    return picks[:n]


def delineation_examples(
    x_mv: np.ndarray,
    ecg_ids: np.ndarray,
    beats: pd.DataFrame,
    summary: pd.DataFrame,
    rate: int,
    out_stem,
    *,
    method: str = "",
    seconds: float = 5.0,
    leads=SHOWN_LEADS,
) -> list[str]:
    """One row per record (x_mv [n, 12, samples] in mV, order of ecg_ids), three leads each, the
    first `seconds` of the record; shaded: P, QRS and T from their global onset to offset,
    dashed: R peaks. The title gives the record's summary line and the data set's success rate."""
    n = len(ecg_ids)
    table = summary.set_index("ecg_id")
    n_ok, n_all = int((summary["status"] == "ok").sum()), len(summary)
    samples = int(min(seconds * rate, x_mv.shape[-1]))
    t = np.arange(samples) / rate
    with figure("delineation_examples", n) as fig:
        axes = fig.subplots(max(n, 1), len(leads), squeeze=False, sharex=True)
        for i, ecg_id in enumerate(ecg_ids):
            row = table.loc[int(ecg_id)]
            b = beats[beats["ecg_id"] == int(ecg_id)]
            if row["status"] == "ok":
                title = (
                    f"ecg_id {int(ecg_id)}: {int(row['n_beats'])} beats, {row['heart_rate_bpm']:.0f} bpm, "
                    f"RR CV {row['rr_irregularity']:.2f}, QRS {row['qrs_ms']:.0f} ms, "
                    f"PR {row['pr_ms']:.0f} ms, QT {row['qt_ms']:.0f} ms"
                )
            else:
                title = f"ecg_id {int(ecg_id)}: failed ({row['reason']})"
            for j, lead in enumerate(leads):
                ax = axes[i, j]
                y = x_mv[i, LEADS.index(lead), :samples]
                for _, on, off, colour in WAVE_SPANS:
                    ok = (b[on] >= 0) & (b[off] >= 0) & (b[on] < samples)
                    for a, z in zip(b.loc[ok, on], b.loc[ok, off]):
                        ax.axvspan(a / rate, min(z, samples - 1) / rate, color=colour, alpha=0.25, lw=0)
                for r in b.loc[(b["r"] >= 0) & (b["r"] < samples), "r"]:
                    ax.axvline(r / rate, color="0.3", lw=0.6, ls="--")
                ax.plot(t, y, color="k", lw=0.8)
                ax.set_ylabel(f"{lead} (mV)")
                if j == 0:
                    ax.set_title(title, loc="left", fontsize=8)
                if i == n - 1:
                    ax.set_xlabel("time (s)")
        handles = [Patch(color=c, alpha=0.4, label=w) for w, _, _, c in WAVE_SPANS]
        fig.legend(handles=handles, loc="outside upper right", ncols=3)
        fig.suptitle(
            f"Delineation ({method}, {rate} Hz): {n_ok} of {n_all} records delineated; examples, first {seconds:.0f} s",
            x=0.01,
            ha="left",
        )
        return save(fig, out_stem)
