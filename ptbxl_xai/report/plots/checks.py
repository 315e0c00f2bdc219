"""Figures of the expert-rule and sanity checks: alignment vs nulls, deletion probe, randomisation cascade."""

from __future__ import annotations

from contextlib import contextmanager

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ptbxl_xai.report.plots._common import DPI, METHOD_COLORS, PALETTE, save

CHECK_CAPTIONS = {
    "expert_rule_alignment": "Agreement with expert rules. For each label with a cited criterion (rules.tsv: "
    "segments x leads, e.g. HYP: QRS in V1, V5, V6, aVL) and each method, the share of the positive "
    "attribution that falls on the rule's region (dots: mean over the test records positive for the label, "
    "bars: 95% bootstrap interval by record), against three nulls of the same records: the region's share of "
    "lead x time (grey line), of the signal energy (black line) and the share for the model with randomised "
    "weights (open circle). One panel per background (gradient SHAP and attention do not depend on it). "
    "Only a share above all three nulls says the model's evidence follows the rule.",
    "rule_deletion_probe": "Rule-region deletion probe. For each test record positive for a label, the rule's "
    "segments x leads are replaced by the background in one model call. Bars: mean drop of the label's "
    "probability (95% bootstrap interval by record) for the trained model, for a random region of the same "
    "lead x time size outside the rule (same records), and for the model with randomised weights; numbers: "
    "share of records whose probability dropped. One panel per background.",
    "randomisation_cascade": "Model-parameter randomisation test (Adebayo et al. 2018). Layers are "
    "re-initialised cumulatively from the head towards the input; at each step the same test records are "
    "re-explained and compared with the trained model's explanations by Spearman rank correlation over the "
    "features, signed (left) and absolute (right); lines: mean over record-labels, bands: 95% bootstrap "
    "intervals. A method that depends on the model falls towards 0; one that stays high explains the "
    "input, not the model (flagged in method_flags.tsv).",
    "expert_rule_alignment_table": "Expert-rule alignment per label, method and background (test-fold records "
    "positive for the label, on wave features): share of positive attribution on the rule's region with its 95% "
    "bootstrap interval by record; the region's time share and energy share (nulls a, b) and the paired "
    "differences share - null with intervals; the randomised model's share (null c) and the paired difference "
    "trained - randomised; n_no_positive: records without positive attribution (left out).",
    "rule_deletion_probe_table": "Rule-region deletion probe per label and background: mean P(label) of the "
    "records, share of records whose probability dropped and mean drop (95% bootstrap interval) when the "
    "rule's region is replaced by the background; the same for a random region of equal lead x time size "
    "(paired difference rule - random) and for the randomised model (paired difference trained - randomised).",
    "background_check": "What the model predicts for each background itself (every feature masked) on the "
    "checked test records: share classified NORM at the validation-tuned threshold, mean P(NORM), the most "
    "frequent top label, and each label's mean probability and positive rate. A background meant to be normal "
    "should be classified NORM; otherwise masking explanations compare with an abnormal-looking reference.",
    "expert_rules_table": "The expert rules applied to this run's labels: segments and leads of each "
    "label's textbook criterion, the number of positive test records, and the references "
    "(ptbxl_xai/resources/expert_rules.yaml).",
    "randomisation_table": "Cascading randomisation per method and step: mean Spearman rank correlation "
    "(95% bootstrap interval over record-labels) between the explanation of the model with the layers up "
    "to that step re-initialised and the trained model's, for signed and absolute attributions.",
    "method_flags": "Sanity flag of each explanation method from the fully randomised model: fail when the "
    "signed explanations still correlate with the trained model's (interval above checks.max_rank_correlation), "
    "caution when only the absolute values do (statistics of absolute attributions are then partly input-driven), "
    "pass otherwise. The viewer shows these flags in its method description.",
    "seed_consistency": "Self-consistency across training seeds: the same test records and labels explained by "
    "the runs of checks.seed_runs; mean pairwise Spearman rank correlation (95% bootstrap interval over "
    "record-label-pairs) per method, signed and absolute.",
}

_FIGSIZES = {"expert_rule_alignment": 4.2, "rule_deletion_probe": 3.6, "randomisation_cascade": 4.0}


@contextmanager
def _figure(name: str, width: float, height: float):
    rc = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "pdf.fonttype": 42}
    with sns.axes_style("whitegrid"), matplotlib.rc_context(rc):
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _empty(fig, text: str):
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)


def expert_rule_alignment(alignment: pd.DataFrame, out_stem, context: str = "") -> list[str]:
    """Share of positive attribution on each rule's region per label and method, vs the three nulls."""
    bgs = sorted(alignment["background"].unique()) if not alignment.empty else []
    labels = list(dict.fromkeys(alignment["label"])) if not alignment.empty else []
    methods = [m for m in METHOD_COLORS if not alignment.empty and m in set(alignment["method"])]
    width = max(6.0, 1.1 * len(labels) * max(len(methods), 1) / 2 + 2)
    with _figure("expert_rule_alignment", width, _FIGSIZES["expert_rule_alignment"] * max(len(bgs), 1)) as fig:
        if alignment.empty:
            _empty(fig, "No record could be checked against a rule (no delineated positives of a label with a rule).")
            return save(fig, out_stem)
        axes = np.atleast_1d(fig.subplots(len(bgs), 1, squeeze=False)[:, 0])
        offsets = np.linspace(-0.3, 0.3, len(methods)) if len(methods) > 1 else np.zeros(1)
        for ax, bg in zip(axes, bgs):
            a = alignment[alignment["background"] == bg]
            for k, method in enumerate(methods):
                m = a[a["method"] == method].set_index("label").reindex(labels)
                x = np.arange(len(labels)) + offsets[k]
                color = METHOD_COLORS[method]
                err = np.vstack([m["share"] - m["share_low"], m["share_high"] - m["share"]])
                ax.errorbar(x, m["share"], yerr=np.nan_to_num(err), fmt="o", color=color, ms=5, capsize=2, label=method)
                ax.scatter(x, m["randomised_share"], facecolors="none", edgecolors=color, s=30, zorder=3)
            first = a.drop_duplicates("label").set_index("label").reindex(labels)
            for i, (t, e) in enumerate(zip(first["time_share"], first["energy_share"])):
                ax.hlines(t, i - 0.4, i + 0.4, color="0.6", lw=2)
                ax.hlines(e, i - 0.4, i + 0.4, color="k", lw=1)
            ax.set_xticks(np.arange(len(labels)))
            n = first["n_records"].fillna(0).astype(int)
            ax.set_xticklabels([f"{lab}\n{first.loc[lab, 'region']}\nn={n[lab]}" for lab in labels], fontsize=7)
            ax.set(ylim=(0, 1.02), ylabel="share of positive attribution on the rule's region")
            ax.set_title(f"background: {bg}")
        handles, names = axes[0].get_legend_handles_labels()
        handles += [
            matplotlib.lines.Line2D([], [], color="0.6", lw=2),
            matplotlib.lines.Line2D([], [], color="k", lw=1),
            matplotlib.lines.Line2D([], [], marker="o", ls="", mfc="none", mec="0.3"),
        ]
        names += ["time share (null a)", "energy share (null b)", "randomised model (null c)"]
        axes[0].legend(handles, names, loc="upper right", ncol=2, fontsize=7)
        fig.suptitle(f"Expert-rule alignment{': ' + context if context else ''}")
        return save(fig, out_stem)


def rule_deletion_probe(probe: pd.DataFrame, out_stem, context: str = "") -> list[str]:
    """Probability drop when the rule's region is deleted: trained vs random region vs randomised model."""
    bgs = sorted(probe["background"].unique()) if not probe.empty else []
    with _figure("rule_deletion_probe", 8.0, _FIGSIZES["rule_deletion_probe"] * max(len(bgs), 1)) as fig:
        if probe.empty:
            _empty(fig, "No record could be probed (no delineated positives of a label with a rule).")
            return save(fig, out_stem)
        axes = np.atleast_1d(fig.subplots(len(bgs), 1, squeeze=False)[:, 0])
        bars = [
            ("drop", "frac_drop", "trained: rule region", PALETTE[0]),
            ("drop_random", "frac_drop_random", "trained: random region, same size", PALETTE[7]),
            ("randomised_drop", "randomised_frac_drop", "randomised model: rule region", PALETTE[3]),
        ]
        for ax, bg in zip(axes, bgs):
            p = probe[probe["background"] == bg].reset_index(drop=True)
            x = np.arange(len(p))
            for k, (col, frac, name, color) in enumerate(bars):
                xs = x + (k - 1) * 0.27
                yerr = None
                if col == "drop":
                    yerr = np.nan_to_num(np.vstack([p["drop"] - p["drop_low"], p["drop_high"] - p["drop"]]))
                ax.bar(xs, p[col], width=0.25, color=color, yerr=yerr, capsize=2, label=name)
                for xi, yi, fi in zip(xs, p[col], p[frac]):
                    if np.isfinite(fi):
                        ax.annotate(f"{fi:.0%}", (xi, yi), ha="center", va="bottom", fontsize=6)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(x)
            ax.set_xticklabels([f"{r.label}\n{r.region}\nn={int(r.n_records)}" for r in p.itertuples()], fontsize=7)
            ax.set(ylabel="drop of P(label) (probability)")
            ax.set_title(f"background: {bg}")
        axes[0].legend(loc="upper right", fontsize=7)
        fig.suptitle(f"Rule-region deletion probe{': ' + context if context else ''}")
        return save(fig, out_stem)


def randomisation_cascade(summary: pd.DataFrame, out_stem, context: str = "") -> list[str]:
    """Spearman of each cascade step's explanations with the trained ones, signed and absolute."""
    with _figure("randomisation_cascade", 10.0, _FIGSIZES["randomisation_cascade"]) as fig:
        if summary.empty:
            _empty(fig, "No record was re-explained (no test record with a label).")
            return save(fig, out_stem)
        axes = fig.subplots(1, 2, sharey=True)
        steps = summary.drop_duplicates("step").sort_values("step")
        for ax, variant in zip(axes, ("signed", "absolute")):
            for method, g in summary.groupby("method", sort=False):
                g = g.sort_values("step")
                color = METHOD_COLORS.get(method, "0.3")
                ax.plot(g["step"], g[variant], marker="o", color=color, label=method)
                ax.fill_between(g["step"], g[f"{variant}_low"], g[f"{variant}_high"], color=color, alpha=0.2)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(steps["step"])
            ax.set_xticklabels([f"+{name}" for name in steps["layer"]], rotation=30, ha="right", fontsize=7)
            ax.set(
                ylim=(-1, 1.02),
                xlabel="layers re-initialised (cumulative, from the head)",
                title=f"{variant} attributions",
            )
        axes[0].set_ylabel("Spearman with the trained model's explanation")
        axes[1].legend(loc="lower left")
        fig.suptitle(f"Cascading randomisation{': ' + context if context else ''}")
        return save(fig, out_stem)
