"""Ablation grid: model and training variants x seeds, each a run of the ordinary DAG.

`expand_runs(ablation_cfg)` turns the `ablation:` config section into named runs
(`abl-<variant>-s<seed>`), which the Snakefile adds to `runs`; train/predict/evaluate then treat
them like any other run. `summarize` reads their metrics and models back into one table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ecgxai.config import expand_runs, run_name  # noqa: F401  (re-exported)
from ecgxai.evaluation.metrics import PAIRED_COLUMNS, evaluable_labels, paired_comparison
from ecgxai.evaluation.predictions import read_predictions
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.model.checkpoint import load_checkpoint
from ecgxai.model.hybrid import count_parameters
from ecgxai.outputs import write_tsv
from ecgxai.report import tables
from ecgxai.report.plots._common import PALETTE, figure, save


def inference_ms_per_record(
    model: torch.nn.Module, shape: tuple[int, int], batch: int = 256, repeats: int = 3
) -> float:
    """Median wall time of a batched CPU forward pass, per record (random input of the data's shape)."""
    x = torch.randn(batch, *shape)
    model.eval()
    with torch.inference_mode():
        model(x[:8])  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return float(np.median(times) / batch * 1000)


def collect(runs: Sequence[dict], shape: tuple[int, int]) -> pd.DataFrame:
    """One row per trained ablation run: variant, seed, metrics, context, size and speed.

    Each item of `runs`: variant, seed, run, and the paths overall (metrics TSV), context (JSON),
    model (a checkpoint: the holdout model, or the fold-10 model under crossval) and history.
    """
    rows = []
    for r in runs:
        overall = pd.read_csv(r["overall"], sep="\t").set_index("metric")["value"]
        history = pd.read_csv(r["history"], sep="\t")
        with open(r["context"]) as f:
            ctx = json.load(f)
        model, _ = load_checkpoint(r["model"])
        rows.append(
            {
                "variant": r["variant"],
                "seed": r["seed"],
                "run": r["run"],
                "architecture": ctx.get("architecture", ""),
                "macro_auc": overall["macro_auc"],
                "macro_f1_tuned": overall["macro_f1@tuned"],
                "fmax": overall["fmax"],
                "brier": overall.get("brier", np.nan),
                "parameters": count_parameters(model),
                "epochs": len(history),
                "seconds_per_epoch": history["seconds"].mean(),
                "inference_ms_per_record": inference_ms_per_record(model, shape),
                "test_records": ctx.get("test_records"),
                "split": ctx.get("split"),
                "data_source": ctx.get("data_source"),
                "labels_with_test_positives": ctx.get("labels_with_test_positives"),
            }
        )
    return pd.DataFrame(rows)


def _aligned(pred: dict, thr: np.ndarray, order: np.ndarray):
    pos = {int(i): k for k, i in enumerate(pred["ecg_id"])}
    if set(pos) != set(int(i) for i in order):
        raise ValueError(f"run {pred['meta'].get('run')}: its test records differ from the reference run's")
    idx = np.array([pos[int(i)] for i in order])
    return pred["y_true"][idx], pred["prob"][idx], (thr[idx] if np.ndim(thr) == 2 else thr)


def _reference_pairs(runs: Sequence[dict], reference: str):
    """(variant run, reference run, labels, y, p_ref, t_ref, p_var, t_var) for every variant run that has a
    reference run of the same seed, its predictions aligned on the reference's records."""
    by_key = {(r["variant"], r["seed"]): r for r in runs}
    for r in runs:
        ref = by_key.get((reference, r["seed"]))
        if ref is None or r["variant"] == reference:
            continue
        pred_ref, pred = read_predictions(ref["predictions"]), read_predictions(r["predictions"])
        names = pred_ref["label_names"]
        if pred["label_names"] != names:
            raise ValueError(f"runs {ref['run']} and {r['run']} have different label sets")
        t_ref = read_thresholds(ref["thresholds"], names, test_fold=pred_ref.get("test_fold"))
        t_var = read_thresholds(r["thresholds"], names, test_fold=pred.get("test_fold"))
        order = pred_ref["ecg_id"]
        y, p_ref, t_ref = _aligned(pred_ref, t_ref, order)
        y_var, p_var, t_var = _aligned(pred, t_var, order)
        if not np.array_equal(y, y_var):
            raise ValueError(f"runs {ref['run']} and {r['run']}: the same records carry different labels")
        yield r, ref, names, y, p_ref, t_ref, p_var, t_var


PAIR_KEYS = ["variant", "seed", "run", "reference_run"]


def paired_against_reference(
    runs: Sequence[dict], reference: str, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> pd.DataFrame:
    """Paired bootstrap of every variant against the reference variant of the same seed, same records.

    Each item of `runs`: variant, seed, run, predictions (the scored test table) and thresholds.
    Rows: variant, seed, run, reference_run and ecgxai.evaluation.metrics.paired_comparison's
    columns (delta = variant - reference).
    """
    out = []
    for r, ref, _, y, p_ref, t_ref, p_var, t_var in _reference_pairs(runs, reference):
        table = paired_comparison(y, p_ref, t_ref, p_var, t_var, n_boot=n_boot, seed=seed, ci=ci)
        out.append(table.assign(variant=r["variant"], seed=r["seed"], run=r["run"], reference_run=ref["run"]))
    if not out:
        return pd.DataFrame(columns=[*PAIR_KEYS, *PAIRED_COLUMNS])
    return pd.concat(out, ignore_index=True)[[*PAIR_KEYS, *PAIRED_COLUMNS]]


PER_LABEL_COLUMNS = [*PAIR_KEYS, "label", "positives", "auc_reference", "auc_variant", "delta", "ci_low", "ci_high",
                     "p_value", "n_boot"]  # fmt: skip


def paired_per_label(
    runs: Sequence[dict], reference: str, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> pd.DataFrame:
    """Per-label paired ΔAUC (variant - reference, same seed and records): what a macro mean can hide,
    e.g. one normalisation helping the voltage-defined label while others drift the other way.
    Each label has its own bootstrap (replicates need a positive and a negative of that label);
    labels without both in the test records are left out."""
    rows = []
    for r, ref, names, y, p_ref, t_ref, p_var, t_var in _reference_pairs(runs, reference):
        for j in evaluable_labels(y):
            cmp = paired_comparison(
                y[:, [j]], p_ref[:, [j]], t_ref[..., [j]], p_var[:, [j]], t_var[..., [j]],
                n_boot=n_boot, seed=seed, ci=ci, metrics=["macro_auc"],
            ).iloc[0]  # fmt: skip
            rows.append(
                {"variant": r["variant"], "seed": r["seed"], "run": r["run"], "reference_run": ref["run"],
                 "label": names[j], "positives": int(y[:, j].sum()), "auc_reference": cmp.value_a,
                 "auc_variant": cmp.value_b, "delta": cmp.delta, "ci_low": cmp.ci_low, "ci_high": cmp.ci_high,
                 "p_value": cmp.p_value, "n_boot": cmp.n_boot}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=PER_LABEL_COLUMNS)


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


def summarize(per_run: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean and standard deviation over seeds per variant, in config order, with the paired deltas.

    Paired columns per metric m (macro_auc, macro_f1@tuned): delta_<m> (mean over seeds),
    delta_<m>_ci_low/high and p_<m> (of the seed with the median delta; with one seed, that seed),
    delta_<m>_per_seed (every seed's delta, the distribution across seeds), significant_<m> (p < 0.05).
    """
    order = list(dict.fromkeys(per_run["variant"]))
    g = per_run.groupby("variant", sort=False)
    out = pd.DataFrame(
        {
            "n_seeds": g.size(),
            **{f"{m}_mean": g[m].mean() for m in ("macro_auc", "macro_f1_tuned", "fmax")},
            **{f"{m}_sd": g[m].std(ddof=1) for m in ("macro_auc", "macro_f1_tuned", "fmax")},
            "parameters": g["parameters"].first(),
            "seconds_per_epoch": g["seconds_per_epoch"].mean(),
            "inference_ms_per_record": g["inference_ms_per_record"].mean(),
            "test_records": g["test_records"].first(),
            "split": g["split"].first(),
        }
    ).reindex(order)
    if paired is not None and len(paired):
        for m in ("macro_auc", "macro_f1@tuned"):
            key = m.replace("@", "_")
            sub = paired[paired.metric == m]
            for variant, rows in sub.groupby("variant", sort=False):
                rows = rows.sort_values("delta", kind="stable")
                mid = rows.iloc[(len(rows) - 1) // 2]
                out.loc[variant, f"delta_{key}"] = rows["delta"].mean()
                out.loc[variant, f"delta_{key}_ci_low"] = mid["ci_low"]
                out.loc[variant, f"delta_{key}_ci_high"] = mid["ci_high"]
                out.loc[variant, f"p_{key}"] = mid["p_value"]
                out.loc[variant, f"delta_{key}_per_seed"] = "; ".join(
                    f"s{int(s)}: {d:+.3f}" for s, d in zip(rows["seed"], rows["delta"])
                )
                out.loc[variant, f"significant_{key}"] = bool(mid["p_value"] < 0.05)
    return out.reset_index()


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


def ablation_run(
    *,
    ablation: dict,
    runs,
    reference: str,
    evaluate: dict,
    metrics,
    contexts,
    models,
    histories,
    predictions,
    thresholds,
    shape,
    per_run,
    paired,
    per_label,
    per_label_table_path,
    table,
    figure,
) -> pd.DataFrame:
    """The ablation stage: per-run table, paired comparisons against `reference` (TSV), summary table
    (TSV/MD/TeX), per-label paired ΔAUC (`per_label`: every seed, TSV; `per_label_table_path`: over
    seeds, TSV/MD/TeX) and figure (PNG/PDF). `runs` names the runs in the order of the path lists (the rule's
    inputs); `table` and `figure` are the .tsv and .png paths, the .md/.tex and .pdf are written beside them.
    """
    runs = list(runs)
    lists = (metrics, contexts, models, histories, predictions, thresholds)
    if any(len(x) != len(runs) for x in lists):
        raise ValueError(f"{len(runs)} runs but path lists of lengths {[len(x) for x in lists]}")
    variant_seed = {run_name(v, s): (v, int(s)) for v in ablation["grid"] for s in ablation["seeds"]}
    unknown = [r for r in runs if r not in variant_seed]
    if unknown:
        raise ValueError(f"runs {unknown} are not in the ablation grid {sorted(variant_seed)}")
    items = [
        {"run": r, "variant": variant_seed[r][0], "seed": variant_seed[r][1], "overall": o, "context": c,
         "model": m, "history": h, "predictions": p, "thresholds": t}
        for r, o, c, m, h, p, t in zip(runs, *lists)
    ]  # fmt: skip
    rows = collect(items, tuple(shape))
    write_tsv(rows, per_run)
    pairs = paired_against_reference(
        items, reference, n_boot=evaluate["n_boot"], seed=evaluate["seed"], ci=evaluate["ci"]
    )
    write_tsv(pairs, paired)
    summary = summarize(rows, pairs)
    with open(contexts[0]) as f:
        note = tables.context_note(json.load(f))
    ablation_table(summary, Path(table).with_suffix(""), reference, note)
    labels = paired_per_label(items, reference, n_boot=evaluate["n_boot"], seed=evaluate["seed"], ci=evaluate["ci"])
    write_tsv(labels, per_label)
    per_label_table(labels, Path(per_label_table_path).with_suffix(""), reference, note)
    ablation_figure(rows, Path(figure).with_suffix(""), pairs, reference)
    return summary
