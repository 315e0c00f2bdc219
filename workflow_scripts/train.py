"""Rule train: fit the hybrid model on folds 1-8, select on fold 9, tune thresholds on fold 9."""

import json

import yaml

from ecgxai.data.parquet_io import load_fold_arrays
from ecgxai.evaluation.thresholds import tune_thresholds
from ecgxai.model.checkpoint import save_checkpoint
from ecgxai.model.hybrid import count_parameters, model_from_config
from ecgxai.model.training import TrainConfig, predict, set_seed, train_model
from ecgxai.runlog import logged

with logged(snakemake.log[0]) as log:
    run, folds = snakemake.params.run, snakemake.params.folds
    train_cfg = dict(run["train"])
    label_set = train_cfg.pop("label_set")
    cfg = TrainConfig.from_dict({**train_cfg, "num_threads": snakemake.threads})
    data, labels = snakemake.input.data, snakemake.input.labels
    x_tr, y_tr, _, names = load_fold_arrays(data, labels, folds["train"], label_set)
    x_va, y_va, _, _ = load_fold_arrays(data, labels, folds["val"], label_set)
    log.info(
        "run %s: label set %s (%d labels), %d train / %d validation records",
        snakemake.wildcards.run,
        label_set,
        len(names),
        len(x_tr),
        len(x_va),
    )

    set_seed(cfg.seed)  # the initial weights too: torch's own start-up seed differs per process
    model = model_from_config(run["model"], n_classes=len(names))
    log.info("model: %d parameters, %s", count_parameters(model), run["model"])
    model, history = train_model(model, x_tr, y_tr, x_va, y_va, cfg)

    probs, _ = predict(model, x_va, device=cfg.device)
    thresholds = tune_thresholds(y_va, probs)
    save_checkpoint(snakemake.output.weights, model, run["model"], names)
    history.to_csv(snakemake.output.history, sep="\t", index=False)
    with open(snakemake.output.thresholds, "w") as f:
        json.dump(
            {
                "label_set": label_set,
                "tuned_on_folds": list(folds["val"]),
                "thresholds": dict(zip(names, map(float, thresholds))),
            },
            f,
            indent=1,
        )
    with open(snakemake.output.config, "w") as f:
        yaml.safe_dump({"run": snakemake.wildcards.run, **run, "train_effective": cfg.to_dict()}, f, sort_keys=False)
    best = history.loc[history.val_macro_auc.idxmax()]
    log.info("best epoch %d: validation macro AUC %.4f", best.epoch, best.val_macro_auc)
