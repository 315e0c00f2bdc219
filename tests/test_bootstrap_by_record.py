"""Correlation and faithfulness intervals resample records, and 'best' needs a significant paired difference."""

import numpy as np
import pandas as pd

from ptbxl_xai.explain.correlate import summarize
from ptbxl_xai.report.tables import faithfulness_summary


def _per_record(n_records=40, labels_per_record=3, seed=0):
    rng = np.random.default_rng(seed)
    rec_effect = rng.normal(0.4, 0.3, n_records)  # the labels of one record share its signal
    rows = []
    for r in range(n_records):
        for k in range(labels_per_record):
            v = float(np.clip(rec_effect[r] + rng.normal(0, 0.02), -1, 1))
            rows.append({"ecg_id": r, "label": f"L{k}", "method_a": "shap", "method_b": "attention",
                         "space": "time", "variant": "abs", "pearson": v, "spearman": v, "predicted": k == 0})  # fmt: skip
    return pd.DataFrame(rows)


def test_correlation_interval_resamples_records_not_pairs():
    df = _per_record()
    by_record = summarize(df, n_boot=1000).query("statistic == 'pearson' and labels == 'all explained'").iloc[0]
    as_pairs = summarize(df.drop(columns=["ecg_id", "predicted"]), n_boot=1000).query("statistic == 'pearson'").iloc[0]
    # three nearly identical labels per record: treating them as independent understates the spread
    assert (by_record.ci_high - by_record.ci_low) > 1.3 * (as_pairs.ci_high - as_pairs.ci_low)
    assert by_record.n == 120 and by_record.n_records == 40


def test_headline_correlation_uses_predicted_labels():
    df = _per_record()
    table = summarize(df, n_boot=200).query("statistic == 'pearson'").set_index("labels")
    assert list(table.index) == ["predicted", "all explained"]
    assert table.at["predicted", "n"] == 40 and table.at["all explained", "n"] == 120
    assert table.at["predicted", "median"] == np.median(df.loc[df.predicted, "pearson"])


def _aucs(shift, n_records=60, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.random(n_records)
    rows = []
    for m, extra in (("shap", 0.0), ("lime", shift)):
        for r in range(n_records):
            for k in range(2):
                rows.append({"ecg_id": r, "label": f"L{k}", "method": m, "kind": "deletion",
                             "auc": base[r] + extra + rng.normal(0, 0.01)})  # fmt: skip
    return pd.DataFrame(rows)


def test_best_faithfulness_is_marked_only_when_the_paired_difference_is_significant():
    clear = faithfulness_summary(_aucs(shift=0.05)).set_index("method")
    assert clear.at["shap", "best"] and clear.at["shap", "vs_next"] == "lime"
    assert clear.at["shap", "vs_next_ci_high"] < 0 and clear.at["shap", "vs_next_p"] < 0.01
    tie = faithfulness_summary(_aucs(shift=0.0)).set_index("method")
    assert not tie["best"].any()
