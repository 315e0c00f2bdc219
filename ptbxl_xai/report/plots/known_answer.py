"""The known-answer benchmark's figure: localisation of each method on planted causes, against the mask's share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptbxl_xai.report.plots._common import METHOD_COLORS, figure, save

KNOWN_ANSWER_CAPTIONS = {
    "known_answer_localisation": "Known-answer localisation. Records of the test fold whose label was planted by "
    "one known change (ST elevation V1-V4, PR > 200 ms, QRS >= 120 ms, T inversion V5-V6, R voltage V5/V6, absent "
    "P), the pair's other record identical outside the change. Left of each row: share of each method's positive "
    "attribution on the features that overlap the change's lead x sample mask (dots: mean over records, bars: 95% "
    "bootstrap interval; open circles: the model with randomised weights; grey ticks: those features' share of "
    "lead x time, what an even spread scores). Right: pointing game, the share of records whose top feature "
    "overlaps the mask. One row per "
    "architecture, wave features, the first configured background; labels the model has not learnt (test AUC "
    "< 0.95) are marked with an asterisk, their scores prove nothing.",
}


def localisation_figure(table: pd.DataFrame, out_stem, context: str = "") -> list[str]:
    """Share in the mask and pointing game per label and method (rows: architectures); PNG and PDF."""
    space = "waves" if (table.feature_space == "waves").any() else table.feature_space.iloc[0]
    sub = table[table.feature_space == space]
    backgrounds = [b for b in dict.fromkeys(sub.background) if b != "-"]
    background = backgrounds[0] if backgrounds else "-"
    sub = sub[sub.background.isin([background, "-"])]
    archs = list(dict.fromkeys(sub.architecture))
    labels = list(dict.fromkeys(sub.label))
    methods = [m for m in METHOD_COLORS if m in set(sub.method)]
    width = 0.8 / max(len(methods), 1)
    with figure("known_answer_localisation", len(archs)) as fig:
        axes = fig.subplots(len(archs), 2, squeeze=False, width_ratios=[2, 1])
        for r, arch in enumerate(archs):
            a = sub[sub.architecture == arch]
            for col, score in enumerate(("share", "pointing")):
                ax = axes[r, col]
                for k, method in enumerate(methods):
                    for model, face in (("trained", METHOD_COLORS[method]), ("randomised", "none")):
                        g = a[(a.method == method) & (a.model == model)].set_index("label").reindex(labels)
                        x = np.arange(len(labels)) + (k - (len(methods) - 1) / 2) * width
                        y = g[score].to_numpy(dtype=float)
                        lo, hi = g[f"{score}_ci_low"].to_numpy(float), g[f"{score}_ci_high"].to_numpy(float)
                        ax.errorbar(x, y, yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)], fmt="o",
                                    color=METHOD_COLORS[method], markerfacecolor=face, markersize=5, capsize=2,
                                    label=method if (r, col, model) == (0, 0, "trained") else None)  # fmt: skip
                if score == "share":
                    null = a[a.model == "trained"].groupby("label")["region_share"].mean().reindex(labels)
                    ax.scatter(
                        np.arange(len(labels)),
                        null,
                        marker="_",
                        s=400,
                        color="0.5",
                        label="region's share of lead x time" if r == 0 else None,
                    )
                names = [lab + ("" if a[a.label == lab]["meaningful"].all() else "*") for lab in labels]
                ax.set_xticks(np.arange(len(labels)), names)
                ax.set_ylim(-0.02, 1.02)
                ax.set_ylabel({"share": "positive attribution on mask", "pointing": "top feature on mask"}[score])
                ax.set_title(f"{arch}: {space}, background {background}", loc="left")
        # below the panels: inside, it hides the points of the right-hand labels
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=6)
        if context:
            fig.suptitle(context, fontsize=9)
        return save(fig, out_stem)
