"""Figures of the classifier: ROC/PR curves, training curves, per-label AUC bars, error analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ptbxl_xai.report.plots._common import PALETTE, as_thresholds, figure, precision_recall, roc, save


def test_set_name(pred: dict) -> str:
    """'test fold 10' or 'out-of-fold (10-fold cross-validation)', from the predictions' metadata."""
    meta = pred.get("meta") or {}
    if meta.get("split") == "crossval":
        return "out-of-fold records (10-fold cross-validation)"
    folds = meta.get("folds") or [10]
    return "test fold " + ",".join(str(f) for f in folds)


def _frequent_labels(y: np.ndarray, names, top_n: int) -> list[int]:
    """Indices of the most frequent labels having both positives and negatives."""
    pos = y.sum(0)
    ok = np.flatnonzero((pos > 0) & (pos < len(y)))
    return [int(i) for i in ok[np.argsort(-pos[ok], kind="stable")][:top_n]]


def roc_pr_curves(pred: dict, out_stem, top_n: int = 6) -> list[str]:
    """ROC and precision-recall curves of the `top_n` most frequent test labels."""
    y, p, names = np.asarray(pred["y_true"]), np.asarray(pred["prob"]), list(pred["label_names"])
    idx = _frequent_labels(y, names, top_n)
    with figure("roc_pr_curves") as fig:
        ax_roc, ax_pr = fig.subplots(1, 2)
        for j, c in enumerate(idx):
            color = PALETTE[j % len(PALETTE)]
            fpr, tpr, auc = roc(y[:, c], p[:, c])
            ax_roc.plot(fpr, tpr, color=color, lw=1.4, label=f"{names[c]} (AUC {auc:.3f}, n={int(y[:, c].sum())})")
            rec, prec, ap = precision_recall(y[:, c], p[:, c])
            prev = y[:, c].mean()
            ax_pr.plot(
                np.r_[0.0, rec],
                np.r_[prec[0], prec],
                color=color,
                lw=1.4,
                drawstyle="steps-pre",
                label=f"{names[c]} (AP {ap:.3f}, prevalence {prev:.3f})",
            )
            ax_pr.axhline(prev, color=color, lw=0.6, ls=":")
        ax_roc.plot([0, 1], [0, 1], color="0.5", ls="--", lw=0.8, label="chance")
        ax_roc.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="false positive rate (1 - specificity)",
            ylabel="true positive rate (sensitivity)",
            title="ROC curves",
        )
        ax_pr.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="recall (sensitivity)",
            ylabel="precision (positive predictive value)",
            title="Precision-recall curves (dotted: prevalence)",
        )
        ax_roc.legend(loc="lower right")
        ax_pr.legend(loc="lower left")  # PR curves start at the top left
        fig.suptitle(f"{test_set_name(pred).capitalize()} ({len(y)} records): the {len(idx)} most frequent labels")
        return save(fig, out_stem)


def training_curves(history: pd.DataFrame, out_stem) -> list[str]:
    """Train/validation loss, validation macro AUC and learning rate per epoch; best epoch marked."""
    h = history.sort_values("epoch")
    best = h.loc[h["val_macro_auc"].idxmax()]
    with figure("training_curves") as fig:
        ax_loss, ax_auc, ax_lr = fig.subplots(1, 3, sharex=True)
        ax_loss.plot(h["epoch"], h["train_loss"], marker="o", ms=3, color=PALETTE[0], label="train")
        ax_loss.plot(h["epoch"], h["val_loss"], marker="o", ms=3, color=PALETTE[1], label="validation (fold 9)")
        ax_loss.set(ylabel="loss (unitless)", title="Training objective")
        ax_auc.plot(h["epoch"], h["val_macro_auc"], marker="o", ms=3, color=PALETTE[2])
        ax_auc.annotate(
            f"best {best['val_macro_auc']:.3f}",
            (best["epoch"], best["val_macro_auc"]),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=8,
        )
        ax_auc.set(ylabel="macro ROC AUC (unitless)", title="Validation macro AUC")
        ax_lr.plot(h["epoch"], h["lr"], marker="o", ms=3, color=PALETTE[4])
        ax_lr.set(yscale="log", ylabel="learning rate (log scale)", title="Learning rate")
        for ax in (ax_loss, ax_auc, ax_lr):
            ax.axvline(best["epoch"], color="0.4", ls=":", lw=0.9, label=f"best epoch ({int(best['epoch'])})")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_loss.legend()
        minutes = h["seconds"].sum() / 60 if "seconds" in h else float("nan")
        fig.suptitle(f"Training: {len(h)} epochs, {minutes:.1f} min")
        return save(fig, out_stem)


def per_label_bars(per_label: pd.DataFrame, out_stem, n: int = 10) -> list[str]:
    """The `n` best and `n` worst labels by test ROC AUC, with their support."""
    ok = per_label.dropna(subset=["auc"]).sort_values(["auc", "label"], ascending=[False, True], kind="stable")
    n_missing = len(per_label) - len(ok)
    # with fewer than 2n labels the halves split them, so no label appears in both panels
    n_best, n_worst = min(n, (len(ok) + 1) // 2), min(n, len(ok) // 2)
    best, worst = ok.head(n_best), ok.tail(n_worst).iloc[::-1]
    with figure("per_label_bars", n) as fig:
        axes = fig.subplots(1, 2, sharex=True)
        for ax, part, title, color in (
            (axes[0], best, f"Highest AUC ({n_best} labels)", PALETTE[0]),
            (axes[1], worst, f"Lowest AUC ({n_worst} labels)", PALETTE[3]),
        ):
            ax.barh(part["label"].astype(str), part["auc"], color=color)
            for yy, (auc, sup) in enumerate(zip(part["auc"], part["support"])):
                ax.text(auc + 0.01, yy, f"{auc:.3f}  (n={int(sup)})", va="center", fontsize=7)
            ax.axvline(0.5, color="0.4", ls="--", lw=0.8)
            ax.invert_yaxis()
            ax.set(
                xlim=(0, 1.25),
                xticks=np.linspace(0, 1, 6),
                xlabel="test ROC AUC (unitless; dashed: chance)",
                ylabel="label",
                title=title,
            )
        note = f"; {n_missing} label(s) without AUC (no positives or negatives)" if n_missing else ""
        fig.suptitle(f"Per-label ROC AUC on the test fold (n = positive test records){note}")
        return save(fig, out_stem)


def error_counts(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray):
    """(fn [C], fp [C], co [C, C]): co[i, j] = records where label i is a false positive and j is true."""
    y = y.astype(bool)
    yhat = p >= np.asarray(thresholds)  # [C], or [n, C] for pooled folds
    fn_m, fp_m = y & ~yhat, ~y & yhat
    return fn_m.sum(0), fp_m.sum(0), fp_m.T.astype(np.int64) @ y.astype(np.int64)


def error_analysis(pred: dict, thresholds, out_stem, top_n: int = 15) -> list[str]:
    """(a) labels most often missed (FN) / falsely predicted (FP) at the given thresholds;
    (b) for the most frequent false positives, which true labels those records carried."""
    y, p, names = np.asarray(pred["y_true"]), np.asarray(pred["prob"]), list(pred["label_names"])
    thr = as_thresholds(thresholds, names)
    fn, fp, co = error_counts(y, p, thr)
    worst = np.argsort(-(fn + fp), kind="stable")[:top_n]
    rows = [i for i in np.argsort(-fp, kind="stable")[:top_n] if fp[i] > 0]
    cols = np.argsort(-co[rows].sum(0), kind="stable")[:top_n] if rows else []
    cols = [j for j in cols if co[rows, j].sum() > 0]
    with figure("error_analysis", max(len(worst), len(rows))) as fig:
        ax_bar, ax_map = fig.subplots(1, 2, width_ratios=[1, 1.4])
        bars = pd.DataFrame(
            {
                "label": [names[i] for i in worst] * 2,
                "error": ["missed (FN)"] * len(worst) + ["false alarm (FP)"] * len(worst),
                "records": np.r_[fn[worst], fp[worst]],
            }
        )
        sns.barplot(data=bars, y="label", x="records", hue="error", palette=[PALETTE[0], PALETTE[3]], ax=ax_bar)
        ax_bar.set(
            xlabel="test records (count)", ylabel="label", title=f"(a) {len(worst)} labels with most errors (FN + FP)"
        )
        ax_bar.legend(title=None, loc="lower right")
        if rows and cols:
            mat = pd.DataFrame(co[np.ix_(rows, cols)], index=[names[i] for i in rows], columns=[names[j] for j in cols])
            sns.heatmap(
                mat,
                annot=True,
                fmt="d",
                cmap="cividis",
                mask=mat.to_numpy() == 0,
                linewidths=0.4,
                linecolor="white",
                annot_kws={"fontsize": 7},
                cbar_kws={"label": "records (count)"},
                ax=ax_map,
            )
        else:
            ax_map.text(0.5, 0.5, "no false positives", ha="center", va="center", transform=ax_map.transAxes)
        ax_map.set(
            xlabel="true label of the record",
            ylabel="falsely predicted label",
            title="(b) True labels present when a label is falsely predicted",
        )
        ax_map.tick_params(axis="x", rotation=90)
        ax_map.tick_params(axis="y", rotation=0)
        ax_map.grid(False)  # masked (zero) cells stay blank
        rule = f"threshold {thr.flat[0]:g}" if np.all(thr == thr.flat[0]) else "per-label thresholds"
        fig.suptitle(f"Error analysis on the {test_set_name(pred)} ({len(y)} records, {rule})")
        return save(fig, out_stem)


def reliability_diagram(calibration: pd.DataFrame, per_label: pd.DataFrame, out_stem, top_n: int = 5) -> list[str]:
    """Observed frequency against mean predicted probability per probability bin: all record-label
    pairs pooled (left) and the `top_n` most frequent test labels (right), with Brier score and ECE."""
    cal = calibration.dropna(subset=["mean_prob"])
    pooled = cal[cal["label"] == "all"]
    ok = per_label.dropna(subset=["auc"]).sort_values(["support", "label"], ascending=[False, True], kind="stable")
    labels = ok["label"].astype(str).head(top_n).tolist()
    with figure("reliability_diagram") as fig:
        ax_all, ax_lab = fig.subplots(1, 2, sharey=True)
        for ax in (ax_all, ax_lab):
            ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=0.8, label="perfect calibration")
        size = 20 + 180 * pooled["n"] / max(pooled["n"].max(), 1)
        ax_all.plot(pooled["mean_prob"], pooled["observed"], color=PALETTE[0], lw=1.2)
        ax_all.scatter(
            pooled["mean_prob"], pooled["observed"], s=size, color=PALETTE[0], zorder=3, label="bins (area: pairs)"
        )
        for x, yv, n in zip(pooled["mean_prob"], pooled["observed"], pooled["n"]):
            ax_all.annotate(str(int(n)), (x, yv), textcoords="offset points", xytext=(4, -10), fontsize=7)
        brier, ece = per_label["brier"].mean(), per_label["ece"].mean()
        ax_all.set_title(f"All labels pooled (mean per label: Brier {brier:.3f}, ECE {ece:.3f})")
        for j, lab in enumerate(labels):
            part = cal[cal["label"] == lab]
            row = per_label.set_index(per_label["label"].astype(str)).loc[lab]
            ax_lab.plot(
                part["mean_prob"],
                part["observed"],
                marker="o",
                ms=4,
                color=PALETTE[(j + 1) % len(PALETTE)],
                label=f"{lab} (n={int(row['support'])}, Brier {row['brier']:.3f}, ECE {row['ece']:.3f})",
            )
        ax_lab.set_title(f"The {len(labels)} most frequent labels")
        for ax in (ax_all, ax_lab):
            ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="mean predicted probability in the bin")
            ax.legend(loc="upper left", fontsize=7)
        ax_all.set_ylabel("observed frequency of the label in the bin")
        n_records = (
            int(per_label["support"].iloc[0] / per_label["prevalence"].iloc[0])
            if per_label["prevalence"].iloc[0]
            else 0
        )
        fig.suptitle(f"Calibration on the test records ({n_records} records, 10 equal-width probability bins)")
        return save(fig, out_stem)
