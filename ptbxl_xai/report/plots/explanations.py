"""Figures of the explanations: attention over time, SHAP heatmap, SHAP-attention alignment,
deletion/insertion faithfulness."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Patch

from ptbxl_xai.data.ptbxl import LEADS, SECONDS
from ptbxl_xai.report.plots._common import (
    METHOD_COLORS,
    PALETTE,
    REFERENCE_COLOR,
    attention_profiles,
    bin_centres_s,
    bin_edges_s,
    figure,
    lead_order,
    method_maps,
    n_bins_of,
    save,
)
from ptbxl_xai.report.tables import GROUP_ORDER, METHOD_ORDER, PAPER_CORRELATION
from ptbxl_xai.report.tables import label_groups as _default_groups

# ---------------------------------------------------------------- Figure 1


def fig1_attention_distribution(
    attributions: pd.DataFrame,
    out_stem,
    rate: int,
    n_bins: int,
    length_s: float = SECONDS,
    label_groups: Mapping[str, str] | None = None,
) -> list[str]:
    """Attention weight per time bin: (a) distribution over records, (b) mean and 95% CI per label group.

    `rate` documents the signal (x label); bins map to time through `length_s` / `n_bins`.
    label_groups: label -> group name (default: diagnostic superclass, else rhythm/form/other).
    """
    prof = attention_profiles(attributions)
    groups = dict(label_groups) if label_groups is not None else _default_groups(prof["label"].unique())
    centres = bin_centres_s(n_bins, length_s)
    prof = prof.assign(time_s=centres[prof["bin"].to_numpy()], group=prof["label"].map(groups).fillna("other"))
    # attention does not depend on the label: count each record once overall and once per group
    per_record = prof.groupby(["ecg_id", "bin", "time_s"], as_index=False)["value"].first()
    per_group = prof.groupby(["ecg_id", "group", "bin", "time_s"], as_index=False)["value"].first()
    n_rec = per_record["ecg_id"].nunique()
    found = set(per_group["group"])
    order = [g for g in GROUP_ORDER if g in found] + sorted(found - set(GROUP_ORDER))
    n_group = per_group.groupby("group")["ecg_id"].nunique()
    names = {g: f"{g} (n={n_group[g]})" for g in order}  # legend entries carry the record counts
    per_group["group"] = per_group["group"].map(names)

    with figure("fig1_attention_distribution") as fig:
        ax_a, ax_b = fig.subplots(2, 1, sharex=True)
        by_bin = [g["value"].to_numpy() for _, g in per_record.groupby("bin", sort=True)]
        ax_a.boxplot(
            by_bin,
            positions=np.sort(per_record["time_s"].unique()),
            widths=0.7 * length_s / n_bins,
            patch_artist=True,
            manage_ticks=False,
            flierprops={"markersize": 1.5},
            boxprops={"facecolor": PALETTE[0], "alpha": 0.7},
            medianprops={"color": "black"},
        )
        ax_a.set_title(f"(a) Attention per time bin over {n_rec} explained records")
        sns.lineplot(
            data=per_group,
            x="time_s",
            y="value",
            hue="group",
            hue_order=[names[g] for g in order],
            palette="colorblind",
            errorbar=("ci", 95),
            n_boot=1000,
            seed=0,
            marker="o",
            markersize=3,
            ax=ax_b,
        )
        ax_b.set_title("(b) Mean attention per label group (band: 95% bootstrap CI)")
        for ax in (ax_a, ax_b):
            ax.axhline(1 / n_bins, color="0.4", ls="--", lw=0.8, label=f"uniform (1/{n_bins})")
            ax.set_ylabel("attention weight (share of record)")
        ax_a.legend(loc="upper right")
        ax_b.legend(title="label group", ncols=2, loc="upper right")
        ax_b.set_xlabel(f"time (s; {rate} Hz signal, {n_bins} bins of {length_s / n_bins:g} s)")
        ax_b.set_xlim(0, length_s)
        fig.suptitle("Figure 1. Distribution of attention weights over time")
        return save(fig, out_stem)


# ---------------------------------------------------------------- Figure 2


def _signal_lookup(signals) -> Mapping:
    """{ecg_id: [leads, T]} from a mapping or a (X, ecg_ids[, meta]) tuple as load_parquet_records returns."""
    if isinstance(signals, Mapping):
        return signals
    X, ids = signals[0], signals[1]
    return {int(e): X[i] for i, e in enumerate(np.asarray(ids))}


def most_explained_label(attributions: pd.DataFrame, method: str = "shap") -> str:
    rows = method_maps(attributions, method)
    counts = rows.groupby("label")["ecg_id"].nunique()
    return str(counts.sort_values(ascending=False, kind="stable").index[0])


def fig2_shap_heatmap(
    attributions: pd.DataFrame,
    signals,
    out_stem,
    rate: int,
    label: str | None = None,
    trace_lead: str = "II",
    max_traces: int = 20,
) -> list[str]:
    """Mean SHAP per lead x time bin for `label` (signed, centred colour scale), the lead-II
    traces of the same records above on the same time axis."""
    shap = method_maps(attributions, "shap")
    label = label if label is not None else most_explained_label(attributions)
    rows = shap[shap["label"] == label]
    if rows.empty:
        raise ValueError(f"no SHAP rows for label {label!r}")
    n_bins = n_bins_of(shap)
    leads = lead_order(rows["lead"].unique())
    mean = rows.pivot_table(index="lead", columns="bin", values="value", aggfunc="mean").reindex(
        index=leads, columns=range(n_bins)
    )
    ids = rows["ecg_id"].unique()
    lookup = _signal_lookup(signals)
    traces = [np.asarray(lookup[e]) for e in ids if e in lookup]
    T = traces[0].shape[-1] if traces else int(SECONDS * rate)
    length_s = T / rate
    lead_idx = [str(x).upper() for x in LEADS].index(trace_lead.upper())

    with figure("fig2_shap_heatmap") as fig:
        gs = fig.add_gridspec(2, 2, height_ratios=[1, 3], width_ratios=[40, 1])
        ax_sig = fig.add_subplot(gs[0, 0])
        ax_map = fig.add_subplot(gs[1, 0], sharex=ax_sig)
        cax = fig.add_subplot(gs[1, 1])
        t = np.arange(T) / rate
        if traces:
            lead_traces = np.stack([tr[lead_idx] for tr in traces])
            for tr in lead_traces[:max_traces]:
                ax_sig.plot(t, tr, color="0.6", lw=0.4, alpha=0.5)
            ax_sig.plot(t, lead_traces.mean(0), color=PALETTE[0], lw=1.2, label=f"mean of {len(traces)} records")
            ax_sig.legend(loc="upper right")
        else:
            ax_sig.text(0.5, 0.5, "signals of these records not available", ha="center", transform=ax_sig.transAxes)
        ax_sig.set_ylabel(f"lead {trace_lead}\n(z-score, SD)")
        ax_sig.set_title(f"(a) Lead {trace_lead} of the {len(ids)} records explained for {label} (grey) and their mean")
        ax_sig.tick_params(labelbottom=False)

        vmax = float(np.nanmax(np.abs(mean.to_numpy()))) or 1.0  # symmetric: 0 is white
        mesh = ax_map.pcolormesh(
            bin_edges_s(n_bins, length_s),
            np.arange(len(leads) + 1),
            mean.to_numpy(),
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
            shading="flat",
        )
        ax_map.set_yticks(np.arange(len(leads)) + 0.5, [str(x) for x in leads])
        ax_map.invert_yaxis()
        ax_map.grid(False)
        ax_map.set_xlim(0, length_s)
        ax_map.set_xlabel("time (s)")
        ax_map.set_ylabel("lead")
        ax_map.set_title(f"(b) Mean SHAP value per lead and {length_s / n_bins:g}-s bin (red: evidence for {label})")
        fig.colorbar(mesh, cax=cax, label="mean SHAP (change in predicted probability)")
        fig.suptitle(f"Figure 2. SHAP attributions over leads and time for {label}")
        return save(fig, out_stem)


# ---------------------------------------------------------------- Figure 3


def _pairs(correlations: pd.DataFrame, variant: str) -> pd.DataFrame:
    c = correlations[
        (correlations["method_a"] == "shap")
        & (correlations["method_b"] == "attention")
        & (correlations["space"] == "time")
        & (correlations["variant"] == variant)
    ]
    if c.empty:
        raise ValueError(f"no SHAP-vs-attention correlations over time (variant {variant!r})")
    return c


def pick_examples(pairs: pd.DataFrame, n: int) -> pd.DataFrame:
    """Best, median, ..., worst agreement (by Pearson): honest examples, not only the good ones."""
    ok = pairs[np.isfinite(pairs["pearson"])].sort_values("pearson", ascending=False, kind="stable")
    if ok.empty:
        return ok
    idx = np.unique(np.round(np.linspace(0, len(ok) - 1, min(n, len(ok)))).astype(int))
    return ok.iloc[idx]


def _top_k(v: np.ndarray, k: int) -> set:
    return set(np.argsort(-v, kind="stable")[:k].tolist())


def fig3_shap_attention_alignment(
    attributions: pd.DataFrame,
    correlations: pd.DataFrame,
    out_stem,
    rate: int,
    n_examples: int = 3,
    variant: str = "abs",
    length_s: float = SECONDS,
    top_fraction: float = 0.2,
) -> list[str]:
    """Examples of SHAP (summed over leads) vs attention over time, bins in both top-k shaded;
    right: per-record Pearson/Spearman distribution with medians and the paper's 0.48/0.60."""
    pairs = _pairs(correlations, variant)
    shap = method_maps(attributions, "shap")
    att = attention_profiles(attributions)
    n_bins = n_bins_of(attributions)
    k = max(1, int(round(top_fraction * n_bins)))
    edges, centres = bin_edges_s(n_bins, length_s), bin_centres_s(n_bins, length_s)
    examples = pick_examples(pairs, n_examples)

    with figure("fig3_shap_attention_alignment") as fig:
        gs = fig.add_gridspec(max(1, len(examples)), 2, width_ratios=[2.2, 1])
        for i, ex in enumerate(examples.itertuples(index=False)):
            ax = fig.add_subplot(gs[i, 0])
            s = shap[(shap["ecg_id"] == ex.ecg_id) & (shap["label"] == ex.label)]
            m = s.pivot_table(index="lead", columns="bin", values="value").reindex(columns=range(n_bins)).to_numpy()
            sv = np.abs(m).sum(0) if variant == "abs" else m.sum(0)
            a = att[(att["ecg_id"] == ex.ecg_id) & (att["label"] == ex.label)].set_index("bin")["value"]
            av = a.reindex(range(n_bins)).to_numpy()
            for b in sorted(_top_k(sv, k) & _top_k(av, k)):
                ax.axvspan(edges[b], edges[b + 1], color=PALETTE[8], alpha=0.45, lw=0, zorder=0)
            ax.bar(
                centres,
                sv,
                width=length_s / n_bins * 0.6,
                color=METHOD_COLORS["shap"],
                alpha=0.75,
                label="SHAP",
                zorder=2,
            )
            ax.set_ylabel(("|SHAP|" if variant == "abs" else "SHAP") + " summed\nover leads (Δp)")
            tw = ax.twinx()
            tw.plot(centres, av, color=METHOD_COLORS["attention"], marker="o", ms=3, lw=1.5, label="attention")
            tw.set_ylabel("attention weight")
            tw.grid(False)
            ax.set_xlim(0, length_s)
            ax.set_title(
                f"record {ex.ecg_id}, {ex.label}: Pearson {ex.pearson:.2f}, Spearman {ex.spearman:.2f}", fontsize=9
            )
            if i == len(examples) - 1:
                ax.set_xlabel("time (s)")
            if i == 0:  # one legend for all examples, below the figure
                h1, l1 = ax.get_legend_handles_labels()
                h2, l2 = tw.get_legend_handles_labels()
                fig.legend(
                    h1 + h2 + [Patch(color=PALETTE[8], alpha=0.45)],
                    l1 + [f"{l2[0]} (right axis)", f"bin in the top {k} of both"],
                    loc="outside lower left",
                    ncols=3,
                )
        _correlation_panel(fig.add_subplot(gs[:, 1]), pairs, variant)
        fig.suptitle("Figure 3. Alignment of SHAP and attention over time")
        return save(fig, out_stem)


def _correlation_panel(ax, pairs: pd.DataFrame, variant: str) -> None:
    long = pairs.melt(value_vars=["pearson", "spearman"], var_name="statistic", value_name="r").dropna()
    names = {"pearson": "Pearson", "spearman": "Spearman"}
    long["statistic"] = long["statistic"].map(names)
    if long.empty:  # every map constant: nothing to show, say so rather than fail
        ax.text(0.5, 0.5, "no defined correlations", ha="center", va="center", transform=ax.transAxes)
        return
    order = list(names.values())
    sns.violinplot(data=long, x="statistic", y="r", order=order, color="0.88", cut=0, inner=None, linewidth=0.8, ax=ax)
    rng = np.random.default_rng(0)  # seeded jitter: identical figures on rerun
    for x, name in enumerate(order):
        r = long.loc[long["statistic"] == name, "r"].to_numpy()
        ax.scatter(x + rng.uniform(-0.15, 0.15, r.size), r, s=6, color=PALETTE[0], alpha=0.6, lw=0)
    for x, (stat, name) in enumerate(names.items()):
        med = long.loc[long["statistic"] == name, "r"].median()
        ax.hlines(med, x - 0.35, x + 0.35, color="black", lw=2, label="median (ours)" if x == 0 else None)
        ax.annotate(f"{med:.2f}", (x + 0.37, med), va="center", fontsize=8)
        ax.hlines(
            PAPER_CORRELATION[stat],
            x - 0.35,
            x + 0.35,
            color=REFERENCE_COLOR,
            lw=1.5,
            ls="--",
            label="paper (0.48 / 0.60)" if x == 0 else None,
        )
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(-0.6, 1.8)  # room for the median labels
    ax.set_xlabel("correlation statistic")
    ax.set_ylabel("correlation coefficient (unitless)")
    n = len(pairs)
    ax.set_title(
        f"Per record-label agreement, n = {n}\n({'|SHAP|' if variant == 'abs' else 'signed SHAP'} "
        "summed over leads vs attention)",
        fontsize=9,
    )
    ax.legend(loc="lower left", fontsize=7)


# ---------------------------------------------------------------- faithfulness


def _mean_band(g: pd.DataFrame) -> pd.DataFrame:
    """Mean curve with a 95% normal band over record-label pairs at each fraction."""
    s = g.groupby("fraction")["prob"].agg(["mean", "std", "count"])
    half = 1.96 * s["std"].fillna(0) / np.sqrt(s["count"])
    return s.assign(lo=s["mean"] - half, hi=s["mean"] + half).reset_index()


def faithfulness_curves(curves: pd.DataFrame, aucs: pd.DataFrame, out_stem) -> list[str]:
    """Mean deletion and insertion curves per method (95% bands), one row per feature space; mean AUC in
    the legend."""
    if "feature_space" not in curves.columns:
        curves, aucs = curves.assign(feature_space="bins"), aucs.assign(feature_space="bins")
    mean_auc = aucs.groupby(["feature_space", "method", "kind"])["auc"].mean()
    methods = [m for m in METHOD_ORDER if m in set(curves["method"])] + sorted(
        set(curves["method"]) - set(METHOD_ORDER)
    )
    spaces = sorted(curves["feature_space"].unique(), key=lambda k: (k != "waves", k)) or ["bins"]
    what = {"waves": "lead x wave segments", "bins": "lead x time bins"}
    with figure("faithfulness_curves", n=len(spaces)) as fig:
        axes = np.atleast_2d(fig.subplots(len(spaces), 2, sharey=True, squeeze=False))
        for row, space in zip(axes, spaces):
            sc = curves[curves["feature_space"] == space]
            n_pairs = sc.groupby(["ecg_id", "label"]).ngroups
            for ax, kind in zip(row, ("deletion", "insertion")):
                for j, method in enumerate(methods):
                    g = sc[(sc["method"] == method) & (sc["kind"] == kind)]
                    if g.empty:
                        continue
                    b = _mean_band(g)
                    color = METHOD_COLORS.get(method, PALETTE[(5 + j) % len(PALETTE)])
                    auc = mean_auc.get((space, method, kind), np.nan)
                    ax.plot(
                        100 * b["fraction"],
                        b["mean"],
                        color=color,
                        lw=1.6,
                        ls="--" if method == "random" else "-",
                        label=f"{method} (AUC {auc:.3f})",
                    )
                    ax.fill_between(100 * b["fraction"], b["lo"], b["hi"], color=color, alpha=0.18, lw=0)
                verb = "removed (replaced by background)" if kind == "deletion" else "restored (onto background)"
                better = "lower" if kind == "deletion" else "higher"
                ax.set_title(f"{space} ({n_pairs} record-label pairs) - {kind}: {better} AUC = more faithful")
                ax.set_xlabel(f"{what.get(space, space)} {verb}, most important first (%)")
                ax.set_xlim(0, 100)
                ax.legend(title="method (mean AUC)", loc="best")
            row[0].set_ylabel("predicted probability of the explained label")
        fig.suptitle("Deletion and insertion curves per feature space (bands: 95% CI)")
        return save(fig, out_stem)
