"""Scores of counterfactual explanations, for the trained model and for the same model with randomised weights.

For each test record-label (a positive the model calls positive) both kinds of counterfactual are searched
(`explain.counterfactual`: segments made normal; `explain.clinical_edits`: ST/T/QRS/PR edits in mV, x and ms)
and each answer is scored:

* validity: the call falls below the label's threshold;
* sparsity: features made normal (segment counterfactuals);
* proximity: the largest sample change in mV and the lead-time changed in ms (segments), or the edit's size;
* plausibility: the counterfactual record still delineates (the workflow's delineation), its QRS, PR and QT
  stay within `PHYSIOLOGICAL_MS`, and no other label turns positive;
* agreement with the expert rule: the share of the changed lead x segments inside the rule's region;
* time: seconds per search.

The control is the model with every layer re-initialised (`randomisation.randomised_model`), on the same
record-labels: it must lower P(label), from its own value, by the margin the trained model had above its
threshold (`paired_drop_thresholds`), so both searches face the same task in probability units. Its other
labels' thresholds call each label as often on the test fold as the trained model does
(`matched_thresholds`), for "other decisions changed". Counterfactuals that explain the model should be
sparser and more often valid for the trained model than for a random one.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ptbxl_xai.evaluation.bootstrap import mean_ci
from ptbxl_xai.explain.checks.rules import ExpertRule, rule_mask
from ptbxl_xai.explain.clinical_edits import _AMPLITUDE_SEGMENT, Edit, apply_edit, edit_counterfactuals
from ptbxl_xai.explain.counterfactual import feature_counterfactual, made_normal
from ptbxl_xai.explain.spaces.features import FeatureSpace
from ptbxl_xai.explain.spaces.masking import Masker

MODELS = ("trained", "randomised")
# Durations a delineated adult ECG can show, ms (well outside the normal ranges: a counterfactual may be
# abnormal in another way, not impossible): QRS 40-200, PR 80-400 (absent P allowed, as in AF), QT 200-650.
PHYSIOLOGICAL_MS = {"qrs_ms": (40.0, 200.0), "pr_ms": (80.0, 400.0), "qt_ms": (200.0, 650.0)}


def matched_thresholds(p_trained: np.ndarray, thresholds, p_other: np.ndarray) -> np.ndarray:
    """Per label, the threshold at which `p_other` [n, C] calls as many records positive as `p_trained` does at
    `thresholds` (a label nobody is called for gets a threshold above every probability)."""
    thr = np.asarray(thresholds, dtype=np.float64)
    rate = (np.asarray(p_trained) >= thr).mean(axis=0)
    out = np.empty(len(thr))
    for c, r in enumerate(rate):
        col = np.sort(np.asarray(p_other)[:, c])
        n_pos = int(round(r * len(col)))
        out[c] = np.nextafter(col[-1], np.inf) if n_pos == 0 else col[len(col) - n_pos]
    return out


def paired_drop_thresholds(p_trained, thresholds, p_other, matched) -> "Callable[[int, str], np.ndarray]":
    """(record index, label) -> the control's thresholds: `matched` for every label, and for `label` its own
    P minus the trained model's margin P - threshold on that record (indices of p_trained / p_other)."""
    thr = np.asarray(thresholds, dtype=np.float64)
    p_trained, p_other, matched = (np.asarray(a, dtype=np.float64) for a in (p_trained, p_other, matched))

    def for_task(i: int, label_index: int) -> np.ndarray:
        out = matched.copy()
        out[label_index] = p_other[i, label_index] - (p_trained[i, label_index] - thr[label_index])
        return out

    return for_task


def plausibility(x_mv: np.ndarray, rate: int, method: str) -> dict:
    """Does the record [leads, T] in mV still delineate with physiological durations? Returns the record's
    median QRS, PR and QT (ms), `delineates`, `physiological` and the reason where either fails."""
    from ptbxl_xai.data.delineation import DelineationError, delineate_record, record_summary

    out = {"delineates": False, "physiological": False, "qrs_ms": np.nan, "pr_ms": np.nan, "qt_ms": np.nan}
    try:
        beats = delineate_record(np.asarray(x_mv, dtype=np.float64), rate, method)
    except DelineationError as exc:
        return {**out, "plausibility_reason": f"does not delineate: {exc}"}
    summary = record_summary(beats, rate)
    out.update(delineates=True, **{k: summary[k] for k in PHYSIOLOGICAL_MS})
    bad = [
        f"{k} {out[k]:.0f} outside {lo:.0f}-{hi:.0f}"
        for k, (lo, hi) in PHYSIOLOGICAL_MS.items()
        if np.isfinite(out[k]) and not lo <= out[k] <= hi
    ]
    if not np.isfinite(out["qrs_ms"]):
        bad.append("no QRS duration")
    out["physiological"] = not bad
    out["plausibility_reason"] = "; ".join(bad)
    return out


def edit_region(edit: Edit, space: FeatureSpace) -> np.ndarray:
    """[n_features] bool: the lead x segments an edit changes (durations: the target segment in every lead)."""
    seg = _AMPLITUDE_SEGMENT.get(edit.kind, "QRS" if edit.kind == "qrs_duration" else "PR")
    leads = edit.leads or space.lead_names
    upper = [lead.upper() for lead in space.lead_names]
    mask = np.zeros(space.n_features, dtype=bool)
    for lead in leads:
        mask[space.feature_index(upper.index(lead.upper()), seg)] = True
    return mask


def _rule_share(changed: np.ndarray, rule: ExpertRule | None, space: FeatureSpace) -> float:
    if rule is None or not changed.any():
        return np.nan
    return float((changed & rule_mask(rule, space)).sum() / changed.sum())


def record_counterfactuals(
    predict_proba,
    x: np.ndarray,
    space: FeatureSpace,
    masker: Masker,
    lead_scale: np.ndarray,
    lead_offset: np.ndarray,
    rate: int,
    label_names: Sequence[str],
    thresholds,
    label: str,
    edits: Sequence[Edit],
    rule: ExpertRule | None,
    delineation_method: str | None,
    search: dict,
) -> list[dict]:
    """Rows for one record-label and one model: the segment counterfactual, then, on a wave space, one row per
    edit kind. delineation_method None: plausibility is not checked (its columns stay empty)."""
    names = list(label_names)
    thr = np.asarray(thresholds, dtype=np.float64)
    to_mv = np.asarray(lead_scale, np.float64)[:, None], np.asarray(lead_offset, np.float64)[:, None]

    def scored(x_cf, p_before_all, changed) -> dict:
        p_after = np.asarray(predict_proba(x_cf[None]), dtype=np.float64)[0]
        new_pos = [names[i] for i in np.flatnonzero((p_after >= thr) & (p_before_all < thr)) if names[i] != "NORM"]
        diff_mv = np.abs(x_cf.astype(np.float64) - x) * to_mv[0]
        return {
            "delta_mv_max": float(diff_mv.max()),
            "changed_lead_ms": float((diff_mv > 1e-6).sum() * 1000.0 / rate),
            "rule_share": _rule_share(changed, rule, space),
            "new_positives": ";".join(new_pos),
            **(plausibility(x_cf * to_mv[0] + to_mv[1], rate, delineation_method) if delineation_method else {}),
        }

    p_all = np.asarray(predict_proba(x[None]), dtype=np.float64)[0]
    start = time.perf_counter()
    cf = feature_counterfactual(predict_proba, masker, names, thr, label, **search)
    row = {"kind": "segments", **cf.as_row(), "magnitude": float(len(cf.features)), "unit": "features",
           "seconds": time.perf_counter() - start}  # fmt: skip
    if cf.valid:
        changed = np.isin(space.feature_names, cf.features)
        row.update(scored(made_normal(masker, cf.features), p_all, changed))
    rows = [row]
    if space.kind != "waves":
        return rows  # edits need the record's P/QRS/ST/T boundaries
    start = time.perf_counter()
    found = edit_counterfactuals(predict_proba, x, space, lead_scale, rate, names, thr, label, edits, p_record=p_all)
    seconds = time.perf_counter() - start
    for e in found:
        r = {**e.as_row(), "seconds": seconds, "n_changed": np.nan, "status": "flipped" if e.valid else e.reason}
        if e.valid:
            x_cf, _ = apply_edit(x, space, e.edit, lead_scale, rate)
            r.update(scored(x_cf, p_all, edit_region(e.edit, space)))
        rows.append(r)
    return rows


def counterfactual_check(
    models: dict,
    x: np.ndarray,
    ecg_ids: Sequence[int],
    tasks: Sequence[tuple[int, str]],
    spaces: Sequence[FeatureSpace],
    maskers: Sequence[Masker],
    lead_scale: np.ndarray,
    lead_offset: np.ndarray,
    rate: int,
    label_names: Sequence[str],
    rules: dict[str, ExpertRule],
    edits: Sequence[Edit],
    delineation_method: str | None,
    search: dict,
    progress: bool = True,
) -> pd.DataFrame:
    """Rows for every (record index, label) of `tasks` and every model of `models` (name -> (predict_proba,
    thresholds)); thresholds may be a function (record index, label index) -> thresholds, as for the paired
    control. x, spaces, maskers, lead_scale/offset are per record (maskers on the record's wave space)."""
    rows = []
    bar = tqdm(total=len(tasks) * len(models), desc="counterfactuals", unit="record-label", disable=not progress)
    for model_name, (predict_proba, thresholds) in models.items():
        for i, label in tasks:
            for row in record_counterfactuals(
                predict_proba,
                x[i],
                spaces[i],
                maskers[i],
                lead_scale[i],
                lead_offset[i],
                rate,
                label_names,
                thresholds(i, list(label_names).index(label)) if callable(thresholds) else thresholds,
                label,
                edits,
                rules.get(label),
                delineation_method,
                search,
            ):
                rows.append({"ecg_id": int(ecg_ids[i]), "model": model_name, **row})
            bar.update()
    bar.close()
    out = pd.DataFrame(rows)
    for col in ("delineates", "physiological"):
        out[col] = out[col].astype("boolean") if col in out else pd.array([pd.NA] * len(out), dtype="boolean")
    if "new_positives" not in out:
        out["new_positives"] = np.nan
    # plausible: delineates with physiological durations and no new positive; NA where not checked / not valid
    out["plausible"] = out["physiological"] & out["new_positives"].fillna("").eq("")
    return out


def _median_iqr(v: pd.Series) -> tuple[float, float, float]:
    v = pd.to_numeric(v, errors="coerce").dropna()
    if v.empty:
        return np.nan, np.nan, np.nan
    q = np.quantile(v, [0.5, 0.25, 0.75])
    return float(q[0]), float(q[1]), float(q[2])


def _share(v: pd.Series) -> float:
    v = v.dropna()
    return float(v.astype(bool).mean()) if len(v) else np.nan


def summarize(records: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per model, label and kind: validity (share of predicted record-labels that flip, 95% bootstrap interval),
    sparsity / edit size (median, IQR, over valid ones), proximity, plausibility, rule agreement and time."""
    out = []
    for (model, label, kind), g in records.groupby(["model", "label", "kind"], sort=False):
        predicted = g[g["status"] != "not predicted"]
        valid = predicted[predicted["valid"].astype(bool)]
        validity, lo, hi, n = mean_ci(predicted["valid"].astype(float), n_boot, seed=seed)
        size, size_q1, size_q3 = _median_iqr(valid["magnitude"])
        rule, rule_lo, rule_hi, _ = mean_ci(valid.get("rule_share", pd.Series(dtype=float)), n_boot, seed=seed)
        out.append(
            {
                "model": model,
                "label": label,
                "kind": kind,
                "unit": g["unit"].iloc[0],
                "n_record_labels": len(g),
                "n_predicted": n,
                "validity": validity,
                "validity_low": lo,
                "validity_high": hi,
                "size_median": size,
                "size_q1": size_q1,
                "size_q3": size_q3,
                "delta_mv_max_median": _median_iqr(valid.get("delta_mv_max", pd.Series(dtype=float)))[0],
                "changed_lead_ms_median": _median_iqr(valid.get("changed_lead_ms", pd.Series(dtype=float)))[0],
                "plausible": _share(valid["plausible"]),
                "delineates": _share(valid["delineates"]),
                "rule_share": rule,
                "rule_share_low": rule_lo,
                "rule_share_high": rule_hi,
                "seconds_median": float(g["seconds"].median()),
                "seconds_max": float(g["seconds"].max()),
            }
        )
    table = pd.DataFrame(out)
    return _control_verdict(table) if not table.empty else table


def _control_verdict(table: pd.DataFrame) -> pd.DataFrame:
    """`control` on each trained row: whether the randomised model needs more (larger edits) or fails more."""
    key = ["label", "kind"]
    rand = table[table["model"] == "randomised"].set_index(key)
    verdicts = []
    for row in table.itertuples():
        if row.model != "trained" or (row.label, row.kind) not in rand.index:
            verdicts.append("")
            continue
        r = rand.loc[(row.label, row.kind)]
        if r["n_predicted"] == 0:
            verdicts.append("randomised model calls none of these records positive")
        elif row.validity == 0 and r["validity"] == 0:
            verdicts.append("neither model's call flips within the grid or caps")
        elif r["validity"] < row.validity:
            verdicts.append(f"randomised fails more ({r['validity']:.0%} vs {row.validity:.0%} valid)")
        elif np.isfinite(r["size_median"]) and r["size_median"] > row.size_median:
            verdicts.append(f"randomised needs more ({r['size_median']:g} vs {row.size_median:g} {row.unit})")
        else:
            verdicts.append("randomised does as well: these counterfactuals do not single out the trained model")
    table["control"] = verdicts
    return table
