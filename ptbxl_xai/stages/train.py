"""The train, predict and pool_cv stages of one run: read the folds, fit or apply the model, write the files named.

Rules train_cv and predict_cv run the scripts of train and predict, hence `train` and `predict` here: a
cross-validation fold's model is trained and applied exactly as the holdout model, on the folds its params name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import yaml

from ptbxl_xai.data.parquet_io import load_fold_arrays, part_files, read_metadata
from ptbxl_xai.evaluation.crossval import pool_folds
from ptbxl_xai.evaluation.predictions import read_predictions, write_predictions
from ptbxl_xai.evaluation.thresholds import tune_thresholds, write_thresholds
from ptbxl_xai.model.checkpoint import load_checkpoint, save_checkpoint
from ptbxl_xai.model.hybrid import count_parameters, model_from_config
from ptbxl_xai.model.training import TrainConfig, set_seed, train_model
from ptbxl_xai.model.training import predict as predict_probabilities
from ptbxl_xai.outputs import write_json, write_text, write_tsv

log = logging.getLogger(__name__)


def train(
    *,
    data,
    labels,
    weights,
    history,
    thresholds,
    config,
    run: dict,
    folds: dict,
    run_name: str,
    threads: int,
    sidecar=None,
) -> pd.DataFrame:
    """Fit the run's model on folds["train"], select on folds["val"], tune thresholds there; returns the history.

    `run` is the effective run configuration (`ptbxl_xai.config.run_config`): its `model` and `train` sections.
    Writes the weights (and their sidecar `sidecar`, which `save_checkpoint` puts beside them), the history,
    the thresholds and `config`, the effective run configuration (YAML).
    """
    train_cfg = dict(run["train"])
    label_set = train_cfg.pop("label_set")
    cfg = TrainConfig.from_dict({**train_cfg, "num_threads": threads})
    x_tr, y_tr, _, names = load_fold_arrays(data, labels, folds["train"], label_set)
    x_va, y_va, _, _ = load_fold_arrays(data, labels, folds["val"], label_set)
    normalize = read_metadata(part_files(Path(data), folds["train"])[0])["filters"].get("normalize", "record")
    log.info(
        "run %s: label set %s (%d labels), %d train / %d validation records from %s (normalize: %s)",
        run_name,
        label_set,
        len(names),
        len(x_tr),
        len(x_va),
        data,
        normalize,
    )
    set_seed(cfg.seed)  # the initial weights too: torch's own start-up seed differs per process
    model = model_from_config(run["model"], n_classes=len(names))
    log.info("model: %d parameters, %s", count_parameters(model), run["model"])
    model, hist = train_model(model, x_tr, y_tr, x_va, y_va, cfg)

    probs, _ = predict_probabilities(model, x_va, device=cfg.device)
    save_checkpoint(weights, model, run["model"], names)
    write_tsv(hist, history)
    write_thresholds(
        thresholds,
        thresholds=tune_thresholds(y_va, probs),
        label_names=names,
        label_set=label_set,
        tuned_on_folds=folds["val"],
    )
    effective = {
        "run": run_name,
        **run,
        "data": {"path": str(data), "normalize": normalize},
        "train_effective": cfg.to_dict(),
    }
    write_text(config, yaml.safe_dump(effective, sort_keys=False))
    best = hist.loc[hist.val_macro_auc.idxmax()]
    log.info("best epoch %d: validation macro AUC %.4f", best.epoch, best.val_macro_auc)
    return hist


def predict(
    *, data, labels, weights, predictions, folds, label_set: str, run_name: str, split: str, sidecar=None
) -> None:
    """Probabilities and attention of a trained model for the records of `folds`, as a predictions table.

    `sidecar` is the weights' sidecar, which `load_checkpoint` reads beside them.
    """
    model, meta = load_checkpoint(weights)
    x, y, ids, names = load_fold_arrays(data, labels, folds, label_set)
    if names != meta["label_names"]:
        raise ValueError(f"{labels}: label names differ from those the model {weights} was trained on")
    probs, attention = predict_probabilities(model, x)
    write_predictions(
        predictions,
        ids,
        y,
        probs,
        attention,
        names,
        {
            "run": run_name,
            "split": split,
            "folds": list(folds),
            "label_set": label_set,
            "attention_step_edges": model.step_to_sample_edges(x.shape[-1]).tolist(),
            "units": {"prob": "sigmoid probability", "attention": "weight per LSTM step, sums to 1"},
        },
    )
    log.info("%s: %d records, %d labels, attention over %d steps", split, len(ids), len(names), attention.shape[1])


def pool_cv(*, predictions, thresholds, folds, out_predictions, out_thresholds) -> dict:
    """The cross-validation folds' test predictions and thresholds (one file each, in the order of `folds`)
    pooled (`ptbxl_xai.evaluation.crossval.pool_folds`) into `out_predictions` and `out_thresholds`.

    Returns a summary for the log: records, and records per fold.
    """
    if not len(predictions) == len(thresholds) == len(folds):
        raise ValueError("one prediction table and one thresholds file per fold")
    preds = [read_predictions(p) for p in predictions]
    tuned = []
    for path in thresholds:
        with open(path) as f:
            tuned.append(json.load(f))
    pooled, pooled_thresholds = pool_folds(preds, tuned, folds, sources=predictions)
    write_predictions(out_predictions, **pooled)
    write_json(out_thresholds, pooled_thresholds)
    return {
        "records": int(len(pooled["ecg_ids"])),
        "per_fold": {int(f): int(len(p["ecg_id"])) for p, f in zip(preds, folds)},
    }
