"""Scores of an explanation against a known answer: the lead x sample mask of a planted cause.

Attribution-ECG (arXiv 2211.12702) scores methods by localisation and the pointing game against known regions;
Wagner et al. 2024 ask the attribution of a wave-amplitude regression to fall on that wave. Here, per record and
label, with `mask` [leads, T] where the planted change is and an attribution map [F] over a `FeatureSpace`:

* `share`: the share of positive attribution on the features that overlap the mask (the planted region at the
  space's resolution: a model that reads only the mask scores 1, even where the mask covers part of a feature);
  its null is those features' share of the record's lead x time (`region_share`), what an attribution spread
  evenly over lead x time scores; `mask_share` is the mask's own share, at sample resolution;
* `pointing`: whether the feature with the largest attribution overlaps the mask;
* `rank_auc`: the probability that a feature overlapping the mask is ranked above one that does not
  (Mann-Whitney AUC of the attribution values; 0.5 = no localisation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ptbxl_xai.evaluation.bootstrap import mean_ci
from ptbxl_xai.explain.spaces.features import FeatureSpace

SCORES = ("share", "pointing", "rank_auc")
AUC_FLOOR = 0.95  # below it the model has not learnt the planted cause: its explanations prove nothing


def mask_fraction(space: FeatureSpace, mask: np.ndarray) -> np.ndarray:
    """[F] fraction of each feature's samples inside `mask` [leads, T]."""
    m = np.asarray(mask, dtype=np.float64)
    inside = space.sum_samples(m)
    size = space.sum_samples(np.ones_like(m))
    return np.divide(inside, size, out=np.zeros_like(inside), where=size > 0)


def localisation(values: np.ndarray, space: FeatureSpace, mask: np.ndarray) -> dict:
    """Share, pointing game and rank AUC of one attribution map [F] against `mask` [leads, T]."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    frac = mask_fraction(space, mask)
    if v.shape != frac.shape:
        raise ValueError(f"attribution has {v.size} features, the space {frac.size}")
    inside = frac > 0
    pos = np.clip(v, 0, None)
    share = float(pos[inside].sum() / pos.sum()) if pos.sum() > 0 else np.nan
    pointing = float(inside[int(np.argmax(v))]) if np.isfinite(v).all() and v.max() > 0 else np.nan
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    if n_in and n_out and np.ptp(v) > 0:
        ranks = rankdata(v)
        rank_auc = float((ranks[inside].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))
    else:
        rank_auc = np.nan
    region_share = float(space.time_share()[inside].sum())
    return dict(
        share=share, pointing=pointing, rank_auc=rank_auc, region_share=region_share, mask_share=float(np.mean(mask))
    )


def summarize_localisation(rows: pd.DataFrame, keys, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group of `keys`: mean share with its 95% bootstrap interval, the region's and the mask's share of
    lead x time (the nulls), the pointing-game hit rate with its interval, the mean rank AUC, and n record-labels."""
    out = []
    for key, g in rows.groupby(list(keys), sort=True, dropna=False):
        share, lo, hi, n = mean_ci(g["share"], n_boot, 0.95, seed)
        point, p_lo, p_hi, _ = mean_ci(g["pointing"], n_boot, 0.95, seed)
        out.append(
            dict(
                zip(keys, key if isinstance(key, tuple) else (key,)),
                share=share,
                share_ci_low=lo,
                share_ci_high=hi,
                region_share=float(g["region_share"].mean()),
                mask_share=float(g["mask_share"].mean()),
                pointing=point,
                pointing_ci_low=p_lo,
                pointing_ci_high=p_hi,
                rank_auc=float(np.nanmean(g["rank_auc"])) if g["rank_auc"].notna().any() else np.nan,
                n=n,
            )
        )
    return pd.DataFrame(out)


def known_answer_flags(
    table: pd.DataFrame, architecture: str | None, feature_space: str = "waves", background: str = "normal_template"
) -> dict[str, str]:
    """{method: viewer flag} from the planted benchmark's localisation table (rule known_answer) for the model
    `architecture`, in the run's feature space and background: failed where, for a planted label the model
    learnt (AUC >= AUC_FLOOR), the method's share of positive attribution in the mask is no better than an even
    spread (interval reaching down to the region's share of lead x time); caution where it is better but below
    half; passed otherwise. Labels the model did not learn are named, not scored."""
    if architecture is None:
        return {}
    rows = table[(table["architecture"] == architecture) & (table["model"] == "trained")]
    # attention and gradient SHAP do not mask: their rows carry background "-"
    rows = rows[(rows["feature_space"] == feature_space) & rows["background"].isin([background, "-"])]
    if rows.empty:  # another space or background than the benchmark ran: say so rather than guess
        return {}
    flags = {}
    for method, g in rows.groupby("method", sort=True):
        learnt = g[g["meaningful"].astype(bool)]
        skipped = sorted(set(g["label"]) - set(learnt["label"]))
        tail = f"; not scored, the model did not learn: {', '.join(skipped)}" if skipped else ""
        if learnt.empty:
            flags[str(method)] = f"not checked: the planted-cause model learnt no label{tail}"
            continue
        chance = learnt[learnt["share_ci_low"].fillna(learnt["share"]) <= learnt["region_share"]]
        low = learnt[learnt["share"] < 0.5]
        where = f"planted causes ({architecture}, {feature_space}, {background})"
        if len(chance):
            worst = chance.sort_values("share").iloc[0]
            flags[str(method)] = (f"failed: on the {where}, {worst['share']:.2f} of its attribution in the {worst['label']} "
                                  f"mask, no better than the region's {worst['region_share']:.2f}{tail}")  # fmt: skip
        elif len(low):
            worst = low.sort_values("share").iloc[0]
            flags[str(method)] = (f"caution: on the {where}, {worst['share']:.2f} of its attribution in the "
                                  f"{worst['label']} mask (above the region's {worst['region_share']:.2f}){tail}")  # fmt: skip
        else:
            flags[str(method)] = (f"passed: on the {where}, {learnt['share'].min():.2f}-{learnt['share'].max():.2f} "
                                  f"of its attribution in the masks of {len(learnt)} labels{tail}")  # fmt: skip
    return flags
