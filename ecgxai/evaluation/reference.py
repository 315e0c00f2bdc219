"""Published figures our results are compared with (test fold, PTB-XL)."""

import pandas as pd

# (source, model, label set, metric, value)
PUBLISHED = [
    ("paper (Hybrid BiLSTM-CNN + attention)", "hybrid", "all", "macro_auc", 0.919),
    ("paper (Hybrid BiLSTM-CNN + attention)", "hybrid", "all", "macro_f1", 0.369),
    ("PTB-XL benchmark (Strodthoff et al. 2021)", "inception1d", "all", "macro_auc", 0.925),
    ("PTB-XL benchmark (Strodthoff et al. 2021)", "xresnet1d101", "all", "macro_auc", 0.925),
    ("PTB-XL benchmark (Strodthoff et al. 2021)", "lstm_bidir", "all", "macro_auc", 0.914),
]


def published(label_set: str) -> pd.DataFrame:
    df = pd.DataFrame(PUBLISHED, columns=["source", "model", "label_set", "metric", "value"])
    return df[df.label_set == label_set].reset_index(drop=True)


def comparison_table(ours: pd.DataFrame, prior: pd.DataFrame, label_set: str) -> pd.DataFrame:
    """Macro AUC and macro F1 of this run and of the prior baseline next to the published figures.

    `ours`/`prior` are `metrics.evaluate` overall tables. The paper does not say at which
    threshold its F1 was taken, so both 0.5 and the validation-tuned thresholds are listed.
    """
    rows = []
    for source, table in (("this workflow", ours), ("prior baseline (train-fold prevalence)", prior)):
        t = table.set_index("metric")
        for metric in ("macro_auc", "macro_f1@0.5", "macro_f1@tuned", "fmax"):
            if metric in t.index:
                rows.append(
                    {
                        "source": source,
                        "model": "hybrid" if source == "this workflow" else "prior",
                        "label_set": label_set,
                        "metric": metric,
                        "value": t.at[metric, "value"],
                        "ci_low": t.at[metric, "ci_low"],
                        "ci_high": t.at[metric, "ci_high"],
                    }
                )
    pub = published(label_set).assign(ci_low=float("nan"), ci_high=float("nan"))
    return pd.concat([pd.DataFrame(rows), pub], ignore_index=True)
