"""The explain stage for one trained run: pick test records, wrap the model, explain them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgxai.config import SPLITS
from ecgxai.data.parquet_io import load_parquet_records
from ecgxai.evaluation.predictions import read_predictions
from ecgxai.evaluation.thresholds import read_thresholds
from ecgxai.explain.core import Explanations, explain_records
from ecgxai.explain.select import labels_to_explain, select_records
from ecgxai.explain.shap_explain import sample_background
from ecgxai.model.checkpoint import load_checkpoint
from ecgxai.outputs import write_tsv

log = logging.getLogger(__name__)


class _Probabilities(torch.nn.Module):
    """x -> sigmoid probabilities: what gradient SHAP differentiates."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.sigmoid(self.model(x)[0])


def model_callables(model: torch.nn.Module, batch_size: int = 512):
    """Batched numpy -> numpy probability and attention functions (no autograd)."""

    def run(x: np.ndarray, which: int) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                res = model(torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])))
                out.append((torch.sigmoid(res[0]) if which == 0 else res[1]).float().numpy())
        return np.concatenate(out)

    return (lambda x: run(x, 0)), (lambda x: run(x, 1))


def rows_of(ids_all: np.ndarray, wanted) -> np.ndarray:
    """Row index of each wanted ecg_id in the sorted id array (all must be present)."""
    wanted = np.asarray(wanted)
    pos = np.clip(np.searchsorted(ids_all, wanted), 0, len(ids_all) - 1)
    if not np.all(ids_all[pos] == wanted):
        raise ValueError(f"ecg_ids {wanted[ids_all[pos] != wanted][:5].tolist()} missing from the signal data")
    return pos


def explain_run(
    weights: str | Path,
    predictions: str | Path,
    thresholds: str | Path,
    data_dir: str | Path,
    cfg: dict,
    progress: bool = True,
) -> tuple[Explanations, pd.DataFrame]:
    """Explain the test records `cfg` selects; returns the explanations and the selection table."""
    model, meta = load_checkpoint(weights)
    model.eval()
    pred = read_predictions(predictions)
    names = pred["label_names"]
    thr = read_thresholds(thresholds, names)

    selection = select_records(
        pred["prob"],
        pred["y_true"],
        pred["ecg_id"],
        cfg["strategy"],
        cfg["records"],
        thresholds=thr,
        seed=cfg["seed"],
        label_names=names,
    )
    rows = selection["row"].to_numpy()
    labels = labels_to_explain(pred["prob"][rows], thr, cfg["top_k"])
    selection = selection.assign(explained_labels=[",".join(names[c] for c in ls) for ls in labels])
    log.info(
        "explaining %d test records (%s), %d record-label pairs", len(rows), cfg["strategy"], sum(map(len, labels))
    )

    x_test, ids_test, data_meta = load_parquet_records(data_dir, SPLITS["test"])
    x = x_test[rows_of(ids_test, pred["ecg_id"][rows])]
    expl = explain_signals(
        model,
        x,
        labels,
        names,
        pred["ecg_id"][rows].tolist(),
        data_dir,
        cfg,
        n_bins=data_meta["filters"]["n_bins"],
        rate=data_meta["sampling_rate"],
        progress=progress,
    )
    return expl, selection


def training_reference(data_dir, cfg: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(lead means [12], gradient-SHAP background records) from the training data, where `cfg` needs them."""
    if not (cfg["background"] == "mean" or cfg["shap"]["gradient"]):
        return None, None
    # one training fold is a large enough sample for means and the gradient reference
    x_train, _, _ = load_parquet_records(data_dir, SPLITS["train"][:1])
    lead_means = x_train.mean(axis=(0, 2))
    return lead_means, sample_background(x_train, cfg["shap"]["gradient_background"], cfg["seed"])


def explain_signals(
    model,
    x: np.ndarray,
    labels,
    label_names,
    ecg_ids,
    data_dir,
    cfg: dict,
    *,
    n_bins: int,
    rate: int,
    progress: bool = True,
    reference: tuple | None = None,
) -> Explanations:
    """Explain conditioned records x [n, 12, T] for their label indices with `cfg` (the explain config).

    The training data in `data_dir` provides the lead means and the gradient-SHAP reference, or
    `reference` (from `training_reference`) when a caller explains many requests (the live app).
    """
    lead_means, grad_bg = reference if reference is not None else training_reference(data_dir, cfg)
    predict_proba, attention = model_callables(model)
    return explain_records(
        predict_proba,
        x,
        labels,
        n_bins=n_bins,
        background=cfg["background"],
        shap_cfg=cfg["shap"],
        lime_cfg=cfg["lime"],
        attention_fn=attention,
        step_edges=model.step_to_sample_edges(x.shape[-1]),
        seed=cfg["seed"],
        progress=progress,
        ecg_ids=list(ecg_ids),
        label_names=label_names,
        lead_means=lead_means,
        blur_sigma_s=cfg["blur_sigma_s"],
        rate=rate,
        gradient_model=_Probabilities(model) if cfg["shap"]["gradient"] else None,
        gradient_background=grad_bg,
        faithfulness_cfg=cfg["faithfulness"],
        correlations=False,
    )


def write_explanations(
    expl: Explanations, selection_table: pd.DataFrame, *, shap, lime, attention, meta, selection, faithfulness, curves
) -> None:
    """The explain stage's files: attributions per method (Parquet), run details, selection and faithfulness."""
    attrs = expl.attributions
    attrs[attrs.method.isin(["shap", "shap_gradient"])].to_parquet(shap, index=False)
    attrs[attrs.method == "lime"].to_parquet(lime, index=False)
    attrs[attrs.method == "attention"].to_parquet(attention, index=False)
    write_tsv(expl.meta, meta)
    write_tsv(selection_table, selection)
    write_tsv(expl.aucs, faithfulness)
    expl.curves.to_parquet(curves, index=False)
    shap_meta = expl.meta[expl.meta.method == "shap"]
    if len(shap_meta):
        log.info(
            "SHAP additivity error: max %.2e, median %.2e (|sum + base - f(x)|, probability units)",
            shap_meta.additivity_error.max(),
            shap_meta.additivity_error.median(),
        )
    if len(expl.aucs):
        log.info(
            "mean faithfulness AUC per method and curve:\n%s",
            expl.aucs.groupby(["kind", "method"]).auc.mean().unstack(0).to_string(),
        )


def correlate_run(
    *, attributions, n_boot: int, seed: int, per_record, summary, predictions=None, thresholds=None
) -> pd.DataFrame:
    """The correlate stage: agreement of SHAP, LIME and attention from the stored attribution files.

    With the run's test `predictions` and `thresholds`, each record-label row is marked `predicted`
    (probability >= the label's threshold), and the summary's headline rows use those labels only.
    """
    from ecgxai.explain.agreement import correlations_from_attributions
    from ecgxai.explain.correlation import summarize

    attrs = pd.concat([pd.read_parquet(p) for p in attributions], ignore_index=True)
    rows, table = correlations_from_attributions(attrs, n_boot=n_boot, seed=seed)
    if predictions is not None and thresholds is not None and len(rows):
        pred = read_predictions(predictions)
        names = pred["label_names"]
        thr = read_thresholds(thresholds, names, test_fold=pred.get("test_fold"))
        called = pred["prob"] >= thr
        where = {int(i): k for k, i in enumerate(pred["ecg_id"])}
        col = {n: j for j, n in enumerate(names)}
        rows["predicted"] = [
            bool(called[where[int(e)], col[str(lab)]]) for e, lab in zip(rows["ecg_id"], rows["label"])
        ]
        table = summarize(rows, n_boot=n_boot, seed=seed)
    write_tsv(rows, per_record)
    write_tsv(table, summary)
    key = table[(table.method_a == "shap") & (table.method_b == "attention")]
    log.info("SHAP vs attention over time bins (paper: Pearson 0.48, Spearman 0.60):\n%s", key.to_string(index=False))
    return table
