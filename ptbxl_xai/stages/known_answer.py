"""The known-answer benchmark's rules: planted_data, known_answer_train (one model per architecture), known_answer.

The records are the planted pairs of `ptbxl_xai.data.planted`, given to the model in mV as written: no band-pass
and no per-record z-score, because both spread a local change over the whole lead (a z-score divides the lead by
its standard deviation, which the change alters), and then the planted mask would no longer be the only place
where the partners differ. Folds 1-8 train, 9 validates (early stopping), 10 is explained and scored.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ptbxl_xai.data.planted import PLANTED_LABELS, generate_planted, load_planted, save_planted
from ptbxl_xai.evaluation.metrics import roc_auc_per_label
from ptbxl_xai.explain.checks.config import CheckConfig
from ptbxl_xai.explain.checks.known_answer import AUC_FLOOR, localisation, summarize_localisation
from ptbxl_xai.explain.checks.randomisation import randomised_model
from ptbxl_xai.explain.methods.explain_records import explain_maps
from ptbxl_xai.explain.methods.settings import record_seed
from ptbxl_xai.explain.methods.shap_explainer import sample_background
from ptbxl_xai.explain.spaces.features import FIDUCIALS, bin_space, wave_space
from ptbxl_xai.explain.spaces.masking import record_backgrounds
from ptbxl_xai.explain.spaces.template import build_normal_template, normal_template_background
from ptbxl_xai.model.checkpoint import load_checkpoint, save_checkpoint
from ptbxl_xai.model.hybrid import model_from_config
from ptbxl_xai.model.inference import model_functions
from ptbxl_xai.model.training import TrainConfig, train_model
from ptbxl_xai.outputs import write_tsv

log = logging.getLogger(__name__)

TRAIN_FOLDS, VAL_FOLDS, TEST_FOLDS = tuple(range(1, 9)), (9,), (10,)
TEMPLATE_RECORDS = 200  # unplanted training records the NORM-like template is built from


def planted_data(*, planted, pairs_per_label: int, seed: int, rate: int) -> None:
    """Generate the planted pairs and write them (one .npz: signals, labels, masks, true fiducials)."""
    data = generate_planted(pairs_per_label, seed=seed, rate=rate)
    save_planted(data, planted)
    shares = {
        lab: float(data.masks[(data.records.label == lab) & data.records.planted].mean()) for lab in PLANTED_LABELS
    }
    log.info(
        "%d records (%d pairs per label, %d labels) at %d Hz; mask share of lead x time per label: %s",
        len(data.x),
        pairs_per_label,
        len(PLANTED_LABELS),
        rate,
        {k: round(v, 3) for k, v in shares.items()},
    )


def _folds(data, folds) -> np.ndarray:
    return np.flatnonzero(data.records["fold"].isin(folds).to_numpy())


def known_answer_train(*, planted, weights, history, model: dict, train: dict, threads: int = 1) -> None:
    """Train one architecture on the planted pairs (folds 1-8, early stopping on fold 9) and save it."""
    data = load_planted(planted)
    tr, va = _folds(data, TRAIN_FOLDS), _folds(data, VAL_FOLDS)
    cfg = TrainConfig.from_dict({**train, "num_threads": threads})
    net = model_from_config(model, len(PLANTED_LABELS))
    start = time.perf_counter()
    net, hist = train_model(net, data.x[tr], data.y[tr], data.x[va], data.y[va], cfg)
    log.info("trained on %d records, validated on %d: %.0f s", len(tr), len(va), time.perf_counter() - start)
    save_checkpoint(weights, net, dict(model), list(PLANTED_LABELS))
    write_tsv(hist, history)


def _accuracy(arch: str, model, data, test: np.ndarray) -> pd.DataFrame:
    predict, _ = model_functions(model)
    probs = predict(data.x[test])
    auc = roc_auc_per_label(data.y[test], probs)
    return pd.DataFrame(
        dict(
            architecture=arch,
            label=list(PLANTED_LABELS),
            test_records=len(test),
            positives=data.y[test].sum(0).astype(int),
            auc=auc,
            meaningful=auc >= AUC_FLOOR,
            note=[
                "" if a >= AUC_FLOOR else f"AUC {a:.3f} < {AUC_FLOOR}: the model has not learnt the cause" for a in auc
            ],
        )
    )


def _template(data, train: np.ndarray):
    """The NORM-like template of the normal_template background, from unplanted training records."""
    base = [i for i in train if not data.records["planted"].iloc[i]][:TEMPLATE_RECORDS]
    beats = [pd.DataFrame(data.beats[i], columns=list(FIDUCIALS)) for i in base]
    return build_normal_template(data.x[base], beats, data.rate)


def explain_planted(
    arch: str, model, data, rows: np.ndarray, cfg: dict, template, gradient_background, progress: bool = True
) -> pd.DataFrame:
    """Every method x space x background, trained and randomised model, scored against each record's mask."""
    methods = tuple(cfg["methods"])
    if getattr(model, "pooling", "attention") != "attention":
        methods = tuple(m for m in methods if m != "attention")  # this architecture has no attention
    check = CheckConfig(methods=methods, seed=int(cfg["seed"]), shap=dict(cfg["shap"]), lime=dict(cfg["lime"]))
    templates = {"normal_template": lambda x, space: normal_template_background(x, space, template)}
    models = {"trained": model, "randomised": randomised_model(model, int(cfg["seed"]))}
    T = data.x.shape[-1]
    out = []
    for i in tqdm(rows, disable=not progress, desc=f"known answer {arch}", unit="record"):
        eid, label = int(data.records["ecg_id"].iloc[i]), data.records["label"].iloc[i]
        j = PLANTED_LABELS.index(label)
        x, mask = data.x[i], data.masks[i]
        spaces = {
            "waves": wave_space(pd.DataFrame(data.beats[i], columns=list(FIDUCIALS)), T),
            "bins": bin_space(T, int(cfg["n_bins"])),
        }
        for space_name in cfg["spaces"]:
            space = spaces[space_name]
            bgs = record_backgrounds(
                x, cfg["backgrounds"], None, float(cfg["blur_sigma_s"]), data.rate, templates, space
            )
            for which, m in models.items():
                maps = explain_maps(m, x, [j], space, bgs, check, record_seed(check.seed, eid), gradient_background)
                for (method, bg), values in maps.items():
                    out.append(
                        dict(
                            architecture=arch,
                            ecg_id=eid,
                            label=label,
                            method=method,
                            feature_space=space_name,
                            background=bg,
                            model=which,
                            **localisation(values[0], space, mask),
                        )
                    )
    return pd.DataFrame(out)


def _delineation(data, rows: np.ndarray, method: str) -> pd.DataFrame:
    """The workflow's delineator on the planted test records against their true fiducials, per label."""
    from ptbxl_xai.data.delineation import DelineationError, delineate_record, error_table, match_to_truth

    tables = []
    for label in PLANTED_LABELS:
        found, truth = [], []
        for i in rows:
            if data.records["label"].iloc[i] != label:
                continue
            eid = int(data.records["ecg_id"].iloc[i])
            truth.append(pd.DataFrame(data.beats[i], columns=list(FIDUCIALS)).assign(ecg_id=eid))
            try:
                beats = delineate_record(data.x[i], data.rate, method)
            except DelineationError:
                beats = np.empty((0, len(FIDUCIALS)), dtype=np.int32)
            found.append(pd.DataFrame(beats, columns=list(FIDUCIALS)).assign(ecg_id=eid))
        matched = match_to_truth(pd.concat(found), pd.concat(truth), data.rate)
        tables.append(error_table(matched).assign(label=label, records=len(truth)))
    table = pd.concat(tables, ignore_index=True)
    return table[["label", "records", *[c for c in table.columns if c not in ("label", "records")]]]


def known_answer(
    *,
    planted,
    weights: dict,
    cfg: dict,
    per_record,
    localisation_table,
    accuracy,
    delineation,
    figure=None,
    delineation_method: str = "neurokit_prominence",
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Explain the planted partners of the test fold with every method, space and background (trained and
    randomised model) for each architecture in `weights` (name -> model.pt), and score them against their masks."""
    data = load_planted(planted)
    train, test = _folds(data, TRAIN_FOLDS), _folds(data, TEST_FOLDS)
    template = _template(data, train) if "normal_template" in cfg["backgrounds"] else None
    grad_bg = sample_background(data.x[train], int(cfg["shap"].get("gradient_background", 32)), int(cfg["seed"]))
    planted_test = [i for i in test if data.records["planted"].iloc[i]]
    per_label = int(cfg["records_per_label"])
    chosen = np.array(
        [
            i
            for lab in PLANTED_LABELS
            for i in [k for k in planted_test if data.records["label"].iloc[k] == lab][:per_label]
        ]
    )
    rows, acc = [], []
    for arch, path in weights.items():
        model, _ = load_checkpoint(path)
        acc.append(_accuracy(arch, model, data, test))
        start = time.perf_counter()
        rows.append(explain_planted(arch, model, data, chosen, cfg, template, grad_bg, progress))
        log.info("%s: %d records explained and scored in %.0f s", arch, len(chosen), time.perf_counter() - start)
    per = pd.concat(rows, ignore_index=True)
    acc = pd.concat(acc, ignore_index=True)
    keys = ["architecture", "label", "method", "feature_space", "background", "model"]
    table = summarize_localisation(per, keys, n_boot=int(cfg["n_boot"]), seed=int(cfg["seed"]))
    meaningful = acc.set_index(["architecture", "label"])["meaningful"]
    table.insert(2, "meaningful", [bool(meaningful.loc[(a, lab)]) for a, lab in zip(table.architecture, table.label)])
    delin = _delineation(data, test, delineation_method)
    per.to_parquet(Path(per_record), index=False) if str(per_record).endswith(".parquet") else write_tsv(
        per, per_record
    )
    write_tsv(table, localisation_table)
    write_tsv(acc, accuracy)
    write_tsv(delin, delineation)
    written = []
    if figure is not None:
        from ptbxl_xai.report.plots.known_answer import localisation_figure

        context = f"planted test pairs (fold 10), {len(chosen)} planted records, {len(PLANTED_LABELS)} labels"
        written = localisation_figure(table, Path(figure).with_suffix(""), context)
    log.info("accuracy per planted label:\n%s", acc.to_string(index=False))
    best = table[(table.model == "trained")].sort_values("share", ascending=False).groupby("label").head(1)
    log.info("best method per label (share of positive attribution in the mask):\n%s", best.to_string(index=False))
    return dict(per_record=per, localisation=table, accuracy=acc, delineation=delin, figures=written)
