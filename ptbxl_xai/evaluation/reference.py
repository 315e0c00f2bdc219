"""Published figures our results are compared with (test fold, PTB-XL), and when they are comparable; the prior
baseline every run is also compared with.

A published figure is comparable with ours only when the run used the complete, checksum-verified
PTB-XL with the benchmark's split (ptbxl_xai.evaluation.context); otherwise its rows say
"not comparable" and why, and the tables show them apart.
"""

import numpy as np
import pandas as pd

from ptbxl_xai.config import SPLITS, cv_splits
from ptbxl_xai.data.parquet_io import read_labels

# (source, model, label set, metric, value)
PUBLISHED = [
    ("paper (Hybrid BiLSTM-CNN + attention)", "hybrid", "all", "macro_auc", 0.919),
    ("paper (Hybrid BiLSTM-CNN + attention)", "hybrid", "all", "macro_f1", 0.369),
    ("PTB-XL benchmark (Strodthoff et al. 2021)", "inception1d", "all", "macro_auc", 0.925),
    ("PTB-XL benchmark (Strodthoff et al. 2021)", "xresnet1d101", "all", "macro_auc", 0.925),
    ("PTB-XL benchmark (Strodthoff et al. 2021)", "lstm_bidir", "all", "macro_auc", 0.914),
]
OURS = "this workflow"
COLUMNS = [
    "source",
    "model",
    "label_set",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n_labels_used",
    "comparable",
    "note",
]


def published(label_set: str) -> pd.DataFrame:
    df = pd.DataFrame(PUBLISHED, columns=["source", "model", "label_set", "metric", "value"])
    return df[df.label_set == label_set].reset_index(drop=True)


def model_name(architecture: str, run: str) -> str:
    """Rows name the architecture and the run: 'hybrid (run hybrid_superdiagnostic)'."""
    return f"{architecture} (run {run})" if run else str(architecture)


def comparison_table(
    ours: pd.DataFrame, prior: pd.DataFrame, label_set: str, context: dict | None = None
) -> pd.DataFrame:
    """Macro AUC and macro F1 of this run and of the prior baseline next to the published figures.

    `ours`/`prior` are `metrics.evaluate` overall tables; `context` is the run's
    (ptbxl_xai.evaluation.context.run_context). The paper does not say at which threshold its F1
    was taken, so both 0.5 and the validation-tuned thresholds are listed. Published rows carry
    `comparable` (False unless the run used complete, checksum-verified PTB-XL on the benchmark
    split) and the reason in `note`; the context columns close every row.
    """
    ctx = context or {}
    name = model_name(ctx.get("architecture", "hybrid"), ctx.get("run", ""))
    rows = []
    for source, model, table in ((OURS, name, ours), ("prior baseline (train-fold prevalence)", "prior", prior)):
        t = table.set_index("metric")
        for metric in ("macro_auc", "macro_f1@0.5", "macro_f1@tuned", "macro_f1_all_labels@tuned", "fmax"):
            if metric in t.index:
                rows.append(
                    {
                        "source": source,
                        "model": model,
                        "label_set": label_set,
                        "metric": metric,
                        "value": t.at[metric, "value"],
                        "ci_low": t.at[metric, "ci_low"],
                        "ci_high": t.at[metric, "ci_high"],
                        "n_labels_used": t.at[metric, "n_labels_used"],
                        "comparable": True,
                        "note": "",
                    }
                )
    pub = published(label_set).assign(
        ci_low=float("nan"),
        ci_high=float("nan"),
        n_labels_used=pd.NA,
        comparable=bool(ctx.get("published_comparable", False)),
        note=ctx.get("comparability_note", "not comparable: the run's data are unknown"),
    )
    out = pd.concat([pd.DataFrame(rows), pub], ignore_index=True).reindex(columns=COLUMNS)
    for key in (
        "data_source",
        "records_used",
        "records_of_ptbxl",
        "test_records",
        "labels_in_set",
        "labels_with_test_positives",
        "split",
    ):
        if key in ctx:
            out[key] = ctx[key]
    return out


def prior_probabilities(labels_path, label_set: str, ecg_ids, test_fold=None) -> np.ndarray:
    """The prior baseline: each test record gets its model's training-fold label prevalence [n, C]."""
    import pyarrow.parquet as pq

    ids, y_all, _ = read_labels(labels_path, label_set)
    folds = pq.read_table(labels_path, columns=["strat_fold"]).column(0).to_numpy()
    labelled = y_all.any(axis=1)
    if test_fold is None:  # holdout: one model trained on folds 1-8
        return np.broadcast_to(
            y_all[np.isin(folds, SPLITS["train"]) & labelled].mean(axis=0), (len(ecg_ids), len(y_all[0]))
        ).copy()
    test_fold = np.asarray(test_fold)
    out = np.empty((len(ecg_ids), y_all.shape[1]))
    for k in np.unique(test_fold):  # crossval: the training folds of the model that predicted the record
        out[test_fold == k] = y_all[np.isin(folds, cv_splits(k)["train"]) & labelled].mean(axis=0)
    return out
