"""The ablation's tables (TSV/MD/TeX) and figure (PNG/PDF), from the computation in `ptbxl_xai.evaluation.ablation`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptbxl_xai.report import tables
from ptbxl_xai.report.plots._common import PALETTE, figure, save

PER_LABEL_CAPTION = (
    "Ablation per label: paired bootstrap ΔAUC of each variant against the reference (same seed, same records), "
    "mean over seeds; in brackets, how many seeds' 95% intervals exclude 0, with the sign of their Δ."
)


def per_label_table(per_label: pd.DataFrame, out_stem, reference: str = "hybrid", context: str = "") -> list[str]:
    """Variant x label: mean ΔAUC over seeds and how many seeds are significant (TSV exact, MD/TeX formatted)."""
    if per_label.empty:
        tidy = pd.DataFrame(columns=["variant", "label", "seeds", "mean_delta", "significant_up", "significant_down"])
        return tables._write(tidy, tidy.copy(), out_stem, PER_LABEL_CAPTION, [context] if context else [])
    tidy = (
        per_label.assign(up=per_label["ci_low"] > 0, down=per_label["ci_high"] < 0)  # the interval excludes 0
        .groupby(["variant", "label"], sort=False)
        .agg(
            seeds=("seed", "size"),
            positives=("positives", "first"),
            mean_delta=("delta", "mean"),
            significant_up=("up", "sum"),
            significant_down=("down", "sum"),
        )  # fmt: skip
        .reset_index()
    )

    def cell(r) -> str:
        marks = [f"{int(r.significant_up)}/{int(r.seeds)} up"] if r.significant_up else []
        marks += [f"{int(r.significant_down)}/{int(r.seeds)} down"] if r.significant_down else []
        return f"{r.mean_delta:+.3f}" + (f" ({', '.join(marks)})" if marks else "")

    labels = list(dict.fromkeys(tidy["label"]))
    fmt = tidy.assign(cell=[cell(r) for r in tidy.itertuples()]).pivot(index="variant", columns="label", values="cell")
    fmt = fmt.reindex(index=list(dict.fromkeys(tidy["variant"])), columns=labels).reset_index()
    positives = tidy.drop_duplicates("label").set_index("label")["positives"]
    fmt.columns = ["variant"] + [f"{c} (n+ {int(positives[c])})" for c in labels]
    notes = [f"ΔAUC = variant - {reference}; (k/n up|down): seeds whose 95% interval excludes 0"]
    if context:
        notes.append(context)
    return tables._write(tidy, fmt, out_stem, PER_LABEL_CAPTION, notes)


CAPTION = (
    "Ablation: each variant trained with the listed seeds on the same folds and scored on the same test records "
    "(holdout fold 10, or pooled out-of-fold predictions under crossval; the note gives the data and records). "
    "Mean and standard deviation over seeds of macro ROC AUC, macro F1 at validation-tuned thresholds and Fmax; "
    "paired bootstrap differences against the reference variant (same seed, same records) with 95% intervals "
    "and two-sided p-values, * where p < 0.05; parameter count, mean training time per epoch and batched CPU "
    "inference time per record."
)


def _delta(summary: pd.DataFrame, key: str) -> list[str]:
    if f"delta_{key}" not in summary:
        return [""] * len(summary)
    cells = []
    for d, lo, hi, p in zip(
        summary[f"delta_{key}"], summary[f"delta_{key}_ci_low"], summary[f"delta_{key}_ci_high"], summary[f"p_{key}"]
    ):
        if pd.isna(d):
            cells.append("reference")
            continue
        star = "*" if pd.notna(p) and p < 0.05 else ""
        cells.append(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]{star}")
    return cells


def ablation_table(summary: pd.DataFrame, out_stem, reference: str = "hybrid", context: str = "") -> list[str]:
    fmt = pd.DataFrame(
        {
            "variant": summary["variant"],
            "seeds": summary["n_seeds"].map(tables._int),
            **{
                label: [
                    f"{tables._num(m)} ± {tables._num(s)}" if pd.notna(s) else tables._num(m)
                    for m, s in zip(summary[f"{key}_mean"], summary[f"{key}_sd"])
                ]
                for key, label in (("macro_auc", "macro AUC"), ("macro_f1_tuned", "macro F1 (tuned)"), ("fmax", "Fmax"))
            },
            f"ΔAUC vs {reference} [95% CI]": _delta(summary, "macro_auc"),
            "p (ΔAUC)": summary.get("p_macro_auc", pd.Series([np.nan] * len(summary))).map(lambda v: tables._num(v, 3)),
            f"ΔF1 vs {reference} [95% CI]": _delta(summary, "macro_f1_tuned"),
            "p (ΔF1)": summary.get("p_macro_f1_tuned", pd.Series([np.nan] * len(summary))).map(
                lambda v: tables._num(v, 3)
            ),
            "parameters": summary["parameters"].map(tables._int),
            "s / epoch": summary["seconds_per_epoch"].map(lambda v: tables._num(v, 2)),
            "ms / record": summary["inference_ms_per_record"].map(lambda v: tables._num(v, 2)),
        }
    )
    notes = [
        "mean ± standard deviation over seeds; Δ: paired bootstrap difference (variant - reference, same seed "
        "and records; with several seeds, the mean Δ and the interval of the median seed); * p < 0.05",
    ]
    if context:
        notes.append(context)
    return tables._write(summary, fmt, out_stem, CAPTION, notes)


def ablation_figure(
    per_run: pd.DataFrame, out_stem, paired: pd.DataFrame | None = None, reference: str = ""
) -> list[str]:
    """Per-seed points and means of macro AUC and macro F1 per variant; with `paired`, a third panel of
    the paired ΔAUC against the reference (one point and 95% interval per seed)."""
    order = list(dict.fromkeys(per_run["variant"]))
    crossval = "split" in per_run and len(per_run) and str(per_run["split"].iloc[0]).startswith("10-fold")
    test = "out-of-fold" if crossval else "test fold"
    n_panels = 3 if paired is not None and len(paired) else 2
    with figure("faithfulness_curves") as fig:
        fig.set_size_inches(5.0 * n_panels, 5.0)
        axes = fig.subplots(1, n_panels)
        for ax, (metric, label) in zip(axes, (("macro_auc", "macro ROC AUC"), ("macro_f1_tuned", "macro F1 (tuned)"))):
            for i, variant in enumerate(order):
                v = per_run.loc[per_run.variant == variant, metric].to_numpy()
                ax.scatter(np.full(len(v), i), v, color=PALETTE[i % len(PALETTE)], alpha=0.7, zorder=3)
                ax.hlines(v.mean(), i - 0.3, i + 0.3, color="black", lw=2, zorder=4)
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
            ax.set_xlabel("variant")
            ax.set_ylabel(f"{label} ({test}, unitless)")
            ax.set_title(label)
        if n_panels == 3:
            ax = axes[2]
            d = paired[paired.metric == "macro_auc"]
            for i, variant in enumerate(order):
                rows = d[d.variant == variant]
                for k, r in enumerate(rows.itertuples(index=False)):
                    x = i + (k - (len(rows) - 1) / 2) * 0.15
                    ax.errorbar(x, r.delta, yerr=[[r.delta - r.ci_low], [r.ci_high - r.delta]], fmt="o",
                                color=PALETTE[i % len(PALETTE)], capsize=3)  # fmt: skip
            ax.axhline(0, color="0.4", ls="--", lw=0.8)
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
            ax.set(xlabel="variant", ylabel="paired ΔAUC (variant - reference)", title=f"ΔAUC vs {reference} (95% CI)")
        fig.suptitle("Ablation: what each part of the model is worth (points: seeds, bars: mean)")
        return save(fig, out_stem)
