"""Ablation grid: model and training variants x seeds, each a run of the ordinary DAG.

`expand_runs(ablation_cfg)` turns the `ablation:` config section into named runs
(`abl-<variant>-s<seed>`), which the Snakefile adds to `runs`; train/predict/evaluate then treat
them like any other run. `summarize` reads their metrics and models back into one table.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgxai.config import expand_runs, run_name  # noqa: F401  (re-exported)
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


def collect(*, ablation: dict, runs, metrics, models, histories, shape: tuple[int, int]) -> pd.DataFrame:
    """One row per trained ablation run: variant, seed, metrics, size and speed.

    `runs` names the runs in the order of the `metrics`, `models` and `histories` paths (the rule's inputs).
    """
    runs = list(runs)
    if not len(runs) == len(metrics) == len(models) == len(histories):
        raise ValueError(
            f"{len(runs)} runs but {len(metrics)} metrics, {len(models)} models, {len(histories)} histories"
        )
    variant_seed = {run_name(v, s): (v, s) for v in ablation["grid"] for s in ablation["seeds"]}
    unknown = [r for r in runs if r not in variant_seed]
    if unknown:
        raise ValueError(f"runs {unknown} are not in the ablation grid {sorted(variant_seed)}")
    rows = []
    for run, metrics_path, model_path, history_path in zip(runs, metrics, models, histories):
        overall = pd.read_csv(metrics_path, sep="\t").set_index("metric")["value"]
        history = pd.read_csv(history_path, sep="\t")
        model, _ = load_checkpoint(model_path)
        variant, seed = variant_seed[run]
        rows.append(
            {
                "variant": variant,
                "seed": seed,
                "run": run,
                "macro_auc": overall["macro_auc"],
                "macro_f1_tuned": overall["macro_f1@tuned"],
                "fmax": overall["fmax"],
                "parameters": count_parameters(model),
                "epochs": len(history),
                "seconds_per_epoch": history["seconds"].mean(),
                "inference_ms_per_record": inference_ms_per_record(model, shape),
            }
        )
    return pd.DataFrame(rows)


def summarize(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per variant, in config order."""
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
        }
    ).reindex(order)
    return out.reset_index()


CAPTION = (
    "Ablation on the test fold: each variant trained with several seeds on the same folds; mean and "
    "standard deviation over seeds of macro ROC AUC, macro F1 at validation-tuned thresholds and Fmax, "
    "with parameter count, mean training time per epoch and batched CPU inference time per record."
)


def ablation_table(summary: pd.DataFrame, out_stem) -> list[str]:
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
            "parameters": summary["parameters"].map(tables._int),
            "s / epoch": summary["seconds_per_epoch"].map(lambda v: tables._num(v, 2)),
            "ms / record": summary["inference_ms_per_record"].map(lambda v: tables._num(v, 2)),
        }
    )
    return tables._write(summary, fmt, out_stem, CAPTION, ["mean ± standard deviation over seeds"])


def ablation_figure(per_run: pd.DataFrame, out_stem) -> list[str]:
    """Per-seed points and means of macro AUC and macro F1 per variant."""
    order = list(dict.fromkeys(per_run["variant"]))
    with figure("faithfulness_curves") as fig:
        axes = fig.subplots(1, 2)
        for ax, (metric, label) in zip(axes, (("macro_auc", "macro ROC AUC"), ("macro_f1_tuned", "macro F1 (tuned)"))):
            for i, variant in enumerate(order):
                v = per_run.loc[per_run.variant == variant, metric].to_numpy()
                ax.scatter(np.full(len(v), i), v, color=PALETTE[i % len(PALETTE)], alpha=0.7, zorder=3)
                ax.hlines(v.mean(), i - 0.3, i + 0.3, color="black", lw=2, zorder=4)
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
            ax.set_xlabel("variant")
            ax.set_ylabel(f"{label} (test fold, unitless)")
            ax.set_title(label)
        fig.suptitle("Ablation: what each part of the model is worth (points: seeds, bars: mean)")
        return save(fig, out_stem)


def ablation_run(*, ablation: dict, runs, metrics, models, histories, shape, per_run, table, figure) -> pd.DataFrame:
    """The ablation stage: the per-run table (TSV), the summary table (TSV/MD/TeX) and figure (PNG/PDF).

    `table` and `figure` are the .tsv and .png paths; the .md/.tex and .pdf are written beside them.
    """
    rows = collect(ablation=ablation, runs=runs, metrics=metrics, models=models, histories=histories, shape=shape)
    write_tsv(rows, per_run)
    summary = summarize(rows)
    ablation_table(summary, Path(table).with_suffix(""))
    ablation_figure(rows, Path(figure).with_suffix(""))
    return summary
