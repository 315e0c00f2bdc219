"""How the masking background changes explanations: the same records explained once per background.

What replaces a masked feature decides the question an explanation answers. With `zero` a flat ST-T is
itself abnormal, so removing the ST-T of an STTC record can raise P(STTC); with `normal_template` the
question becomes "compared with a normal ECG". `compare_backgrounds` explains a set of records with SHAP
and LIME in each background (same seeds, same feature spaces) and keeps, per record, label, background
and method: the attribution per segment (summed over leads), the deletion/insertion AUCs next to a
random ranking's, and the rank agreement with the first background's map. `background_summary` reduces
that to one row per label, background and method.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptbxl_xai.explain.correlate import spearman


def compare_backgrounds(predict_proba, x, labels, label_names, ecg_ids, spaces, backgrounds, cfg, **kwargs):
    """Per-record rows (ecg_id, label, background, method, feature_space, segment attributions,
    deletion/insertion AUC and the random ranking's, spearman_vs_reference) for each background.

    kwargs go to `explain_records` (template, lead_means, blur_sigma_s, rate). The first background is
    the reference of the rank agreement.
    """
    from ptbxl_xai.explain.methods.explain_records import (
        explain_records,  # here: background_summary runs in the report env
    )

    rows, ref_maps = [], {}
    for bg in backgrounds:
        ex = explain_records(
            predict_proba,
            x,
            labels,
            background=bg,
            shap_cfg={**cfg["shap"], "gradient": False},
            lime_cfg=cfg["lime"],
            seed=cfg["seed"],
            progress=False,
            ecg_ids=list(ecg_ids),
            label_names=label_names,
            faithfulness_cfg=cfg["faithfulness"],
            correlations=False,
            spaces=spaces,
            **kwargs,
        )
        at = ex.attributions
        seg = at.groupby(["ecg_id", "label", "method", "feature_space", "feature"], sort=False)["value"].sum()
        seg = seg.unstack("feature").reset_index()
        auc = ex.aucs.pivot_table(index=["ecg_id", "label", "method", "feature_space"], columns="kind", values="auc")
        auc = auc.reset_index()
        rnd = auc[auc["method"] == "random"].drop(columns="method")
        rnd = rnd.rename(columns={"deletion": "random_deletion", "insertion": "random_insertion"})
        out = seg.merge(auc, on=["ecg_id", "label", "method", "feature_space"], how="left")
        out = out.merge(rnd, on=["ecg_id", "label", "feature_space"], how="left")
        rho = []
        for key, g in at.groupby(["ecg_id", "label", "method", "feature_space"], sort=False):
            v = g.sort_values(["lead", "bin"])["value"].to_numpy()
            if bg == backgrounds[0]:
                ref_maps[key] = v
            ref = ref_maps.get(key)
            rho.append((*key, spearman(v, ref)[0] if ref is not None and len(ref) == len(v) else np.nan))
        rho = pd.DataFrame(rho, columns=["ecg_id", "label", "method", "feature_space", "spearman_vs_reference"])
        out = out.merge(rho, on=["ecg_id", "label", "method", "feature_space"], how="left")
        rows.append(out.assign(background=bg, reference=backgrounds[0]))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def background_summary(per_record: pd.DataFrame, segments=("P", "PR", "QRS", "ST", "T", "TP")) -> pd.DataFrame:
    """One row per label, background, method and feature space: n record-labels, the mean attribution
    per segment (summed over leads; waves only), mean deletion/insertion AUC, the gain of
    (insertion - deletion) over a random ranking and the median rank agreement with the reference."""
    df = per_record.copy()
    df["gain_over_random"] = (df["insertion"] - df["deletion"]) - (df["random_insertion"] - df["random_deletion"])
    seg_cols = [s for s in segments if s in df.columns]
    agg = {c: "mean" for c in seg_cols + ["deletion", "insertion", "gain_over_random"]}
    agg["spearman_vs_reference"] = "median"
    keys = ["label", "feature_space", "method", "background"]
    out = df.groupby(keys, sort=True).agg(agg)
    out.insert(0, "n", df.groupby(keys, sort=True).size())
    return out.reset_index()
