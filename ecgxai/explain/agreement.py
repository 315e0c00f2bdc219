"""Correlations recomputed from stored attributions (the `correlate` rule), so that changing the
summary settings never reruns SHAP or LIME."""

from __future__ import annotations

import pandas as pd

from ecgxai.explain.correlation import record_correlations, summarize

METHODS = ("shap", "lime", "shap_gradient")  # maps compared with attention and with each other


def correlations_from_attributions(attributions: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0):
    """(per_record, summary) from a long attributions table (ecg_id, label, method, [feature_space,] lead, bin, value).

    Each record is compared within each feature space it was explained in (waves, bins); a table
    without `feature_space` is time bins. Attention is stored repeated over leads (it has no lead
    axis), so its profile is read from one lead.
    """
    rows = []
    if "feature_space" not in attributions.columns:
        attributions = attributions.assign(feature_space="bins")
    leads = list(dict.fromkeys(attributions["lead"]))
    for (ecg_id, label, kind), g in attributions.groupby(["ecg_id", "label", "feature_space"], sort=True):
        maps, att = {}, None
        for method, m in g.groupby("method", sort=False):
            grid = m.pivot(index="lead", columns="bin", values="value").reindex(leads).to_numpy()
            if method == "attention":
                att = grid[0]
            elif method in METHODS:
                maps[method] = grid
        ordered = {k: maps[k] for k in METHODS if k in maps}
        rows += [dict(r, feature_space=kind) for r in record_correlations(ecg_id, label, ordered, att)]
    per_record = pd.DataFrame(
        rows,
        columns=[
            "ecg_id",
            "label",
            "feature_space",
            "method_a",
            "method_b",
            "space",
            "variant",
            "pearson",
            "spearman",
            "n",
            "reason",
        ],
    )
    return per_record, summarize(per_record, n_boot=n_boot, seed=seed)
