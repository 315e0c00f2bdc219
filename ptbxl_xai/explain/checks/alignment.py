"""Agreement of explanations with expert rules: the share of evidence on the rule's region vs nulls.

For one record, label and method, the *share* is the positive attribution on the rule's features
(segments x leads, `expert_rules.rule_mask`) over all positive attribution. A share means little alone:
a region that covers more of the record, or more of its signal energy, takes more attribution from any
method whose magnitude follows the input (a randomised model puts 2-7x the time share of its SHAP on the
QRS). So each share is set against three nulls, all per record:

* time share: the region's share of the record's lead x time (`FeatureSpace.time_share`);
* energy share: the region's share of the signal energy sum(x^2) of the model's input;
* randomised: the same share for the model with randomised weights, paired by record.

Summaries bootstrap over records (one row per record within a label, method and background).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptbxl_xai.evaluation.bootstrap import mean_ci
from ptbxl_xai.explain.spaces.features import FeatureSpace

ALIGNMENT_KEYS = ["label", "method", "background"]


def positive_share(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of positive attribution on the masked features: [..., F] -> [...]; NaN where none is positive."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, None)
    m = np.asarray(mask, dtype=bool)
    total = v.sum(-1)
    on = (v * m).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, on / np.where(total > 0, total, 1), np.nan)


def time_share(space: FeatureSpace, mask: np.ndarray) -> float:
    """The region's share of the record's lead x time."""
    return float(space.time_share()[np.asarray(mask, dtype=bool)].sum())


def energy_share(x: np.ndarray, space: FeatureSpace, mask: np.ndarray) -> float:
    """The region's share of sum(x^2) over the record (x: the model input [leads, T])."""
    energy = space.sum_samples(np.square(np.asarray(x, dtype=np.float64)))
    total = energy.sum()
    return float(energy[np.asarray(mask, dtype=bool)].sum() / total) if total > 0 else float("nan")


def summarize_alignment(rows: pd.DataFrame, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per label, method and background: the share with its CI against the three nulls.

    rows: ecg_id, label, method, background, model ("trained" | "randomised"), share, time_share,
    energy_share, region. Differences are paired by record (trained share minus the null of the same
    record); a record where a model has no positive attribution is left out of that model's statistics.
    """
    cols = [
        *ALIGNMENT_KEYS,
        "region",
        "n_records",
        "share",
        "share_low",
        "share_high",
        "time_share",
        "energy_share",
        "share_over_time",
        "minus_time",
        "minus_time_low",
        "minus_time_high",
        "minus_energy",
        "minus_energy_low",
        "minus_energy_high",
        "randomised_share",
        "n_paired",
        "minus_randomised",
        "minus_randomised_low",
        "minus_randomised_high",
        "n_no_positive",
    ]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for key, g in rows.groupby(ALIGNMENT_KEYS, sort=True):
        tr = g[g.model == "trained"].set_index("ecg_id")
        rd = g[g.model == "randomised"].set_index("ecg_id")
        if tr.empty:
            continue
        share, lo, hi, n = mean_ci(tr.share, n_boot, ci, seed)
        ok = tr[np.isfinite(tr.share)]
        mt = mean_ci(ok.share - ok.time_share, n_boot, ci, seed)
        me = mean_ci(ok.share - ok.energy_share, n_boot, ci, seed)
        paired = ok.share.sub(rd.share.reindex(ok.index)).dropna() if not rd.empty else pd.Series(dtype=float)
        mr = mean_ci(paired, n_boot, ci, seed)
        t_mean = float(ok.time_share.mean()) if len(ok) else float("nan")
        out.append(
            dict(
                zip(ALIGNMENT_KEYS, key),
                region=tr.region.iloc[0],
                n_records=n,
                share=share,
                share_low=lo,
                share_high=hi,
                time_share=t_mean,
                energy_share=float(ok.energy_share.mean()) if len(ok) else float("nan"),
                share_over_time=share / t_mean if t_mean > 0 else float("nan"),
                minus_time=mt[0],
                minus_time_low=mt[1],
                minus_time_high=mt[2],
                minus_energy=me[0],
                minus_energy_low=me[1],
                minus_energy_high=me[2],
                randomised_share=float(rd.share.mean()) if not rd.empty else float("nan"),
                n_paired=mr[3],
                minus_randomised=mr[0],
                minus_randomised_low=mr[1],
                minus_randomised_high=mr[2],
                n_no_positive=int((~np.isfinite(tr.share)).sum()),
            )
        )
    return pd.DataFrame(out, columns=cols)
