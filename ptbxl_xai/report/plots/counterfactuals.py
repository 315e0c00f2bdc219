"""Counterfactual figure: each example's median beats, original against counterfactual, changed segments marked."""

from __future__ import annotations

import numpy as np

from ptbxl_xai.explain.spaces.features import SEGMENTS, NotDelineated
from ptbxl_xai.explain.spaces.median_beat import median_beat
from ptbxl_xai.report.plots._common import PALETTE, save
from ptbxl_xai.report.plots.checks import _empty, _figure

LEADS_PER_EXAMPLE = 3
COUNTERFACTUAL_CAPTIONS = {
    "counterfactual_examples": "What would make these ECGs normal. Each row is one test record and label the "
    "trained model calls: the median beat (R-aligned, over the record's beats) of up to three leads whose "
    "segments the counterfactual changed, original (black) against the counterfactual (vermillion), in which "
    "the shaded segments are replaced by their normal version (the NORM template's segment, stretched to the "
    "record's). The title gives the probability before and after and the threshold it fell below.",
    "counterfactuals_table": "Counterfactual scores per label, kind and model (test-fold positives the trained "
    "model calls, up to counterfactuals.records_per_label per label). kind segments: the fewest lead x segments "
    "made normal; st_shift (mV), t_scale / qrs_scale (x), qrs_duration / pr_duration (ms): the smallest edit "
    "of the grid per lead group. validity: share of the predicted record-labels whose call falls below the "
    "threshold (95% bootstrap interval); size: features changed or the edit's size (median, IQR, over valid "
    "answers); delta_mv_max / changed_lead_ms: largest sample change and lead-time changed; plausible: the "
    "counterfactual still delineates with physiological QRS, PR and QT and turns no other label positive; "
    "rule_share: share of the changed lead x segments inside the label's expert rule; seconds per search. "
    "The randomised model (every layer re-initialised) is the control, on the same record-labels: it must lower "
    "P(label) from its own value by the trained model's margin above the threshold; `control` says whether it "
    "needs more or fails more.",
}


def _beat(x, beats, rate):
    try:
        return median_beat(x, beats, rate)
    except (NotDelineated, ValueError, KeyError):
        return None


def counterfactual_examples(examples: list[dict], rate: int, label_names, out_stem, context: str = "") -> list[str]:
    """examples: dicts of original/counterfactual [leads, T], beats, changed ('V2:ST', ...), sentence, ecg_id."""
    from ptbxl_xai.data.ptbxl import LEADS

    n = max(len(examples), 1)
    with _figure("counterfactual_examples", 11.0, 2.3 * n + 0.6) as fig:
        if not examples:
            _empty(fig, "No valid segment counterfactual to draw (no delineated positive flipped within the caps).")
            return save(fig, out_stem)
        axes = fig.subplots(n, LEADS_PER_EXAMPLE, squeeze=False)
        for row, ex in zip(axes, examples):
            changed = [c.split(":") for c in ex["changed"]]
            leads = list(dict.fromkeys(lead for lead, _ in changed))[:LEADS_PER_EXAMPLE]
            before, after = _beat(ex["original"], ex["beats"], rate), _beat(ex["counterfactual"], ex["beats"], rate)
            for ax in row:
                ax.set_axis_off()
            if before is None or after is None:
                row[0].set_axis_on()
                row[0].text(0.0, 0.5, f"ecg {ex['ecg_id']}: no median beat ({ex['sentence']})", fontsize=7)
                continue
            t = (np.arange(before.signal.shape[1]) + before.start_s * rate) / rate * 1000.0
            for ax, lead in zip(row, leads):
                ax.set_axis_on()
                li = [name.upper() for name in LEADS].index(lead.upper())
                if before.segment_of_sample is not None:
                    for seg in (s for ld, s in changed if ld == lead):
                        inside = before.segment_of_sample == SEGMENTS.index(seg)
                        ax.fill_between(t, 0, 1, where=inside, transform=ax.get_xaxis_transform(), color=PALETTE[3],
                                        alpha=0.15, lw=0, label=f"{seg} made normal")  # fmt: skip
                ax.plot(t, before.signal[li], color="k", lw=1.0, label="original")
                ax.plot(t, after.signal[li], color=PALETTE[3], lw=1.0, label="counterfactual")
                ax.set_title(f"{lead}", fontsize=8, loc="left")
                ax.set_xlabel("ms from R", fontsize=7)
                ax.tick_params(labelsize=6)
            row[0].set_ylabel("z-scored amplitude", fontsize=7)
            row[0].annotate(f"ecg {ex['ecg_id']}: {ex['sentence']}", (0, 1.18), xycoords="axes fraction", fontsize=7.5)
            handles, labels = row[0].get_legend_handles_labels()
            unique = dict(zip(labels, handles))
            row[0].legend(unique.values(), unique.keys(), fontsize=6, loc="best", framealpha=0.6)
        fig.suptitle(f"Counterfactual examples: {context}" if context else "Counterfactual examples", fontsize=9)
        return save(fig, out_stem)
