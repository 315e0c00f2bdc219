"""Rule-region deletion probe and the background-as-input check.

Deletion probe (more direct than attribution shares): replace the rule's segments x leads of a record
by the background in one model call and see whether the label's probability drops. Two controls, paired
by record: a random region of the same size outside the rule (features drawn in random order until
they cover as many lead x time samples as the rule's region), and the same probe on the model with
randomised weights.

Background-as-input: the all-masked record is the reference every masking explanation compares with.
A background meant to be "normal" should itself be classified NORM; if not, attributions answer
"compared with an abnormal-looking record, what drives this label".
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ptbxl_xai.evaluation.bootstrap import mean_ci
from ptbxl_xai.explain.spaces.features import FeatureSpace


def random_region(space: FeatureSpace, rule: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[F] bool: features outside `rule`, drawn in random order, covering about the rule's lead x time.

    Stops at whichever prefix of the random order is closest in samples to the rule's region, so the
    control removes as much signal time as the rule does, elsewhere.
    """
    rule = np.asarray(rule, dtype=bool)
    samples = np.tile(space.segment_samples, space.n_leads)  # samples per feature
    target = samples[rule].sum()
    candidates = np.flatnonzero(~rule & (samples > 0))
    order = rng.permutation(candidates)
    cum = np.cumsum(samples[order])
    if len(cum) == 0:
        return np.zeros_like(rule)
    k = int(np.argmin(np.abs(cum - target))) + 1
    out = np.zeros_like(rule)
    out[order[:k]] = True
    return out


def deletion_probe(
    predict_proba: Callable,
    x: np.ndarray,
    background: np.ndarray,
    space: FeatureSpace,
    label: int,
    rule: np.ndarray,
    n_random: int = 5,
    seed: int = 0,
) -> dict:
    """Probability of `label` for the record, with the rule's region deleted, and with random regions.

    One model call of 2 + n_random signals. Returns p_record, p_rule, p_random (mean over the random
    regions), drop_rule = p_record - p_rule, drop_random = p_record - p_random.
    """
    rng = np.random.default_rng(seed)
    rule = np.asarray(rule, dtype=bool)
    regions = [rule] + [random_region(space, rule, rng) for _ in range(n_random)]
    keep = np.stack([~r for r in regions]).astype(np.float32)  # 1 keeps the record's samples
    x = np.asarray(x, dtype=np.float32)
    bg = np.asarray(background, dtype=np.float32)
    masked = bg + space.sample_masks(keep) * (x - bg)
    probs = np.asarray(predict_proba(np.concatenate([x[None], masked])), dtype=np.float64)[:, label]
    p_record, p_rule, p_random = probs[0], probs[1], probs[2:].mean() if n_random else np.nan
    return dict(
        p_record=p_record,
        p_rule=p_rule,
        p_random=p_random,
        drop_rule=p_record - p_rule,
        drop_random=p_record - p_random,
    )


def summarize_probe(rows: pd.DataFrame, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per label and background: how often and by how much deleting the rule's region lowers P(label).

    rows: ecg_id, label, background, model (trained | randomised), region, p_record, p_rule, p_random,
    drop_rule, drop_random. Paired differences: rule drop minus random-region drop (same record, same
    model), and trained rule drop minus randomised rule drop (same record).
    """
    cols = [
        "label",
        "background",
        "region",
        "n_records",
        "p_record",
        "frac_drop",
        "drop",
        "drop_low",
        "drop_high",
        "frac_drop_random",
        "drop_random",
        "minus_random",
        "minus_random_low",
        "minus_random_high",
        "randomised_frac_drop",
        "randomised_drop",
        "minus_randomised",
        "minus_randomised_low",
        "minus_randomised_high",
    ]
    out = []
    if rows.empty:
        return pd.DataFrame(columns=cols)
    for (label, bg), g in rows.groupby(["label", "background"], sort=True):
        tr = g[g.model == "trained"].set_index("ecg_id")
        rd = g[g.model == "randomised"].set_index("ecg_id")
        if tr.empty:
            continue
        d = mean_ci(tr.drop_rule, n_boot, ci, seed)
        mr = mean_ci(tr.drop_rule - tr.drop_random, n_boot, ci, seed)
        paired = tr.drop_rule.sub(rd.drop_rule.reindex(tr.index)).dropna() if not rd.empty else []
        mz = mean_ci(paired, n_boot, ci, seed)
        out.append(
            dict(
                label=label,
                background=bg,
                region=tr.region.iloc[0],
                n_records=d[3],
                p_record=float(tr.p_record.mean()),
                frac_drop=float((tr.drop_rule > 0).mean()),
                drop=d[0],
                drop_low=d[1],
                drop_high=d[2],
                frac_drop_random=float((tr.drop_random > 0).mean()),
                drop_random=float(tr.drop_random.mean()),
                minus_random=mr[0],
                minus_random_low=mr[1],
                minus_random_high=mr[2],
                randomised_frac_drop=float((rd.drop_rule > 0).mean()) if not rd.empty else float("nan"),
                randomised_drop=float(rd.drop_rule.mean()) if not rd.empty else float("nan"),
                minus_randomised=mz[0],
                minus_randomised_low=mz[1],
                minus_randomised_high=mz[2],
            )
        )
    return pd.DataFrame(out, columns=cols)


def background_check(
    predict_proba: Callable,
    backgrounds: dict[str, np.ndarray],
    ecg_ids,
    label_names,
    thresholds,
    normal_label: str = "NORM",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Classify the all-masked records: {kind: [n, leads, T]} -> (per record, per kind summary).

    Per record: ecg_id, background, one column p_<label> per label, top_label, normal (P(normal_label)
    above its threshold). Summary per kind: n_records, frac_normal, mean P(normal_label), the most
    frequent top label, mean probability and positive rate of every label.
    """
    names = list(label_names)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(names),))
    per, summ = [], []
    for kind, bgs in backgrounds.items():
        p = np.asarray(predict_proba(np.asarray(bgs, dtype=np.float32)), dtype=np.float64)
        top = np.asarray(names, dtype=object)[p.argmax(1)]
        has_norm = normal_label in names
        norm = p[:, names.index(normal_label)] >= thr[names.index(normal_label)] if has_norm else np.zeros(len(p), bool)
        frame = pd.DataFrame(p, columns=[f"p_{n}" for n in names])
        frame.insert(0, "background", kind)
        frame.insert(0, "ecg_id", list(ecg_ids))
        frame["top_label"] = top
        frame["normal"] = norm
        per.append(frame)
        positive = p >= thr
        row = dict(
            background=kind,
            n_records=len(p),
            frac_normal=float(norm.mean()) if has_norm else float("nan"),
            p_normal=float(p[:, names.index(normal_label)].mean()) if has_norm else float("nan"),
            top_label=pd.Series(top).mode().iloc[0] if len(top) else "",
        )
        for j, n in enumerate(names):
            row[f"p_{n}"] = float(p[:, j].mean())
            row[f"positive_{n}"] = float(positive[:, j].mean())
        summ.append(row)
    return pd.concat(per, ignore_index=True), pd.DataFrame(summ)
