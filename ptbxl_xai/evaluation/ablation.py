"""Ablation grid: model and training variants x seeds, each a run of the ordinary DAG.

`expand_runs(ablation_cfg)` turns the `ablation:` config section into named runs
(`abl-<variant>-s<seed>`), which the Snakefile adds to `runs`; train/predict/evaluate then treat
them like any other run. `summarize` reads their metrics and models back into one table.
"""

from __future__ import annotations

import json
import time
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ptbxl_xai.config import expand_runs, run_name  # noqa: F401  (re-exported)
from ptbxl_xai.evaluation.metrics import PAIRED_COLUMNS, evaluable_labels, paired_comparison
from ptbxl_xai.evaluation.predictions import read_predictions
from ptbxl_xai.evaluation.thresholds import read_thresholds
from ptbxl_xai.model.checkpoint import load_checkpoint
from ptbxl_xai.model.hybrid import count_parameters


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
    Rows: variant, seed, run, reference_run and ptbxl_xai.evaluation.metrics.paired_comparison's
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
