"""Explanations of a multi-label ECG classifier over a record's feature spaces (waves and/or time bins).

`explain_records` runs, per record and feature space (`ptbxl_xai.explain.spaces.features`: 12 leads x P/PR/QRS/
ST/T/TP where the record is delineated, else 12 x n_bins time bins), permutation SHAP and LIME over the
binary features (one batched set of coalitions serves every label), optionally gradient SHAP on the
raw input summed into the features and the model's attention mapped to them, then deletion/insertion
faithfulness curves. A record can be explained in several spaces in one call (waves and bins, to
compare them); every output row names its feature space. Everything comes back as tidy DataFrames.

Defaults (2 CPU cores, HybridECGNet at T=1000; see benchmarks/explain.py):
  SHAP  npermutations=2  -> 2 x (2F + 1) coalitions per record over its F features, plus the record itself
  LIME  num_samples=1000, kernel_width=25 (x100 cosine distance), uniform-count sampling
  faithfulness 13 points per curve, shap/lime/attention/random rankings
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.explain.correlate import CORRELATION_COLUMNS, record_correlations, summarize
from ptbxl_xai.explain.methods.faithfulness import faithfulness
from ptbxl_xai.explain.methods.lime_explainer import LimeConfig, explain_lime
from ptbxl_xai.explain.methods.settings import record_seed
from ptbxl_xai.explain.methods.shap_explainer import ShapConfig, explain_shap, gradient_shap, sample_background
from ptbxl_xai.explain.spaces.attention import attention_features, attention_to_space, broadcast_leads
from ptbxl_xai.explain.spaces.features import FeatureSpace, bin_space
from ptbxl_xai.explain.spaces.masking import Masker
from ptbxl_xai.explain.spaces.template import NormalTemplate
from ptbxl_xai.model.inference import Probabilities, model_functions

__all__ = ["explain_records", "Explanations", "ShapConfig", "LimeConfig", "Masker", "long_format"]

ATTRIBUTION_COLUMNS = ["ecg_id", "label", "method", "feature_space", "lead", "feature", "bin", "value"]
META_COLUMNS = [
    "ecg_id",
    "label",
    "method",
    "feature_space",
    "background",
    "base",
    "fx",
    "additivity_error",
    "score",
    "intercept",
    "n_evals",
    "seconds",
    "notes",
]
CURVE_COLUMNS = ["ecg_id", "label", "method", "feature_space", "kind", "k", "fraction", "prob"]
AUC_COLUMNS = ["ecg_id", "label", "method", "feature_space", "kind", "auc"]
FAITHFULNESS_DEFAULTS = {"enabled": True, "points": 13, "step": None, "order": "signed", "random": True}


@dataclass
class Explanations:
    """Tidy outputs of `explain_records` (every frame is ready for `DataFrame.to_parquet`).

    attributions: ecg_id, label, method, feature_space, lead, feature, bin, value
                  (method: shap, lime, attention, shap_gradient; feature_space: waves | bins; feature:
                  the segment or bin name, bin: its index within the lead; attention repeats its time
                  profile on every lead)
    meta:         ecg_id, label, method, feature_space, background, base, fx, additivity_error, score,
                  intercept, n_evals, seconds, notes (base/fx/additivity for SHAP, score = LIME's
                  weighted R^2, NaN where not applicable; notes: fallback or estimated boundaries)
    correlations: ecg_id, label, feature_space, method_a, method_b, space, variant, pearson, spearman, n, reason
    correlation_summary: feature_space, method_a, method_b, space, variant, statistic, mean, median, ci_low,
                  ci_high, n, n_nan
    curves:       ecg_id, label, method, feature_space, kind, k, fraction, prob
    aucs:         ecg_id, label, method, feature_space, kind, auc
    maps:         {feature_space: {method: {ecg_id: array [labels, leads, n_features_per_lead]}}}
    """

    attributions: pd.DataFrame
    meta: pd.DataFrame
    correlations: pd.DataFrame
    correlation_summary: pd.DataFrame
    curves: pd.DataFrame
    aucs: pd.DataFrame
    maps: dict = field(default_factory=dict, repr=False)


def long_format(
    values: np.ndarray, ecg_id, labels: Sequence, method: str, lead_names: Sequence, space: FeatureSpace | None = None
) -> pd.DataFrame:
    """[labels, leads, n_features_per_lead] -> rows (ATTRIBUTION_COLUMNS); space None: time bins."""
    L, leads, n_per_lead = values.shape
    kind = space.kind if space is not None else "bins"
    seg_names = space.segment_names if space is not None else tuple(f"bin{i:02d}" for i in range(n_per_lead))
    if len(seg_names) != n_per_lead:
        raise ValueError(f"values have {n_per_lead} features per lead, the space names {len(seg_names)}")
    return pd.DataFrame(
        dict(
            ecg_id=ecg_id,
            label=np.repeat(np.asarray(labels, dtype=object), leads * n_per_lead),
            method=method,
            feature_space=kind,
            lead=np.tile(np.repeat(np.asarray(lead_names, dtype=object), n_per_lead), L),
            feature=np.tile(np.asarray(seg_names, dtype=object), L * leads),
            bin=np.tile(np.arange(n_per_lead), L * leads),
            value=values.ravel().astype(np.float64),
        )
    )


def curve_step(n_features: int, fcfg: dict) -> int:
    """Features masked per faithfulness point: `step` if given, else `points` points over any space."""
    if fcfg.get("step"):
        return int(fcfg["step"])
    return max(1, math.ceil(n_features / max(1, int(fcfg["points"]) - 1)))


def explain_records(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    X_records: np.ndarray,
    labels_per_record: Sequence[Sequence[int]],
    n_bins: int = 20,
    background: str = "normal_template",
    shap_cfg=None,
    lime_cfg=None,
    attention_fn: Callable | None = None,
    step_edges=None,
    seed: int = 0,
    progress: bool = True,
    *,
    ecg_ids: Sequence | None = None,
    label_names: Sequence[str] | None = None,
    lead_names: Sequence[str] | None = None,
    lead_means=None,
    blur_sigma_s: float = 0.1,
    rate: int = 100,
    gradient_model=None,
    gradient_background: np.ndarray | None = None,
    faithfulness_cfg: dict | None = None,
    n_boot: int = 2000,
    correlations: bool = True,
    spaces: Sequence[Sequence[FeatureSpace]] | None = None,
    template: NormalTemplate | None = None,
    other_space_methods: Sequence[str] | None = None,
) -> Explanations:
    """Explain records [n, leads, T] for their labels (indices into the model's outputs).

    predict_proba(x [m, leads, T] float32) -> probabilities [m, C]: the batched model call.
    spaces: per record, the feature spaces to explain it in (e.g. [waves, bins]); default: n_bins
    time bins for every record. background: zero | mean | blur | normal_template (needs `template`).
    attention_fn(x [m, leads, T]) -> attention [m, T'] with `step_edges` ([T'+1], [T', 2] or
    callable T -> edges) giving each step's input span. gradient_model: a torch module
    x -> probabilities [B, C] for gradient SHAP, with `gradient_background` training records.
    faithfulness_cfg: {"enabled": True, "points": 13, "step": None, "order": "signed", "random": True}.
    correlations=False leaves `correlations`/`correlation_summary` empty (computed elsewhere).
    other_space_methods: the masking methods of a record's second and later spaces, without faithfulness
    curves (e.g. ("shap",): the paper's figures on time bins beside wave explanations); None: everything.
    Record i uses its own seed derived from (seed, its ecg_id) (`record_seed`), so results depend neither on
    batching nor on the record's position.
    """
    X = np.asarray(X_records, dtype=np.float32)
    if X.ndim != 3 or len(labels_per_record) != len(X):
        raise ValueError("X_records must be [n, leads, T] with one label list per record")
    n, leads, T = X.shape
    if spaces is None:
        shared = bin_space(T, n_bins)
        spaces = [[shared]] * n
    if len(spaces) != n or any(len(s) == 0 for s in spaces):
        raise ValueError("spaces must give at least one FeatureSpace per record")
    shap_cfg, lime_cfg = ShapConfig.from_any(shap_cfg), LimeConfig.from_any(lime_cfg)
    fcfg = {**FAITHFULNESS_DEFAULTS, **(faithfulness_cfg or {})}
    if attention_fn is not None and step_edges is None:
        raise ValueError("attention_fn needs step_edges (each attention step's input sample span)")
    if background == "normal_template" and template is None:
        raise ValueError("background 'normal_template' needs a NormalTemplate (built from NORM training records)")
    ids = list(ecg_ids) if ecg_ids is not None else list(range(n))
    lead_names = list(lead_names) if lead_names is not None else (list(LEADS) if leads == 12 else list(range(leads)))
    use_grad = gradient_model is not None  # the caller asks for it by passing the model (config: shap.gradient)
    if use_grad:
        if gradient_background is None:
            raise ValueError("gradient SHAP needs gradient_background (training records)")
        grad_bg = sample_background(gradient_background, shap_cfg.gradient_background, seed)

    attrs, meta, corr, curves, aucs = [], [], [], [], []
    maps: dict = {}
    for i in tqdm(range(n), disable=not progress, desc="explain", unit="record"):
        labels = [int(c) for c in labels_per_record[i]]
        if not labels:
            continue
        names = [label_names[c] for c in labels] if label_names is not None else labels
        eid = ids[i]
        rs = record_seed(seed, eid)
        # once per record, whatever the spaces: per-sample gradients and the attention profile
        grad = att = None
        if use_grad:
            t0 = time.perf_counter()
            grad = gradient_shap(gradient_model, X[i], labels, grad_bg, None, shap_cfg, rs)
            grad_seconds = time.perf_counter() - t0
        if attention_fn is not None:
            att = np.asarray(attention_fn(X[i : i + 1]), dtype=np.float64)[0]

        for s_index, space in enumerate(spaces[i]):
            kind, notes = space.kind, "; ".join(space.notes)
            common = dict(ecg_id=eid, feature_space=kind, background=background, notes=notes)
            masker = Masker(X[i], space, background, lead_means, blur_sigma_s, rate, template=template)
            rec_maps = {}
            full = s_index == 0 or other_space_methods is None
            methods = MASKING_METHODS if full else tuple(m for m in MASKING_METHODS if m in other_space_methods)
            found = masking_methods(predict_proba, masker, labels, shap_cfg, lime_cfg, rs, methods)
            sh, dt = found.get("shap", (None, 0.0))
            li, dt_lime = found.get("lime", (None, 0.0))
            if sh is not None:
                rec_maps["shap"] = sh.values
            meta += [
                dict(
                    common,
                    label=names[j],
                    method="shap",
                    base=sh.base[j],
                    fx=sh.fx[j],
                    additivity_error=sh.additivity[j],
                    n_evals=sh.n_evals,
                    seconds=dt,
                )
                for j in range(len(labels) if sh is not None else 0)
            ]

            if li is not None:
                rec_maps["lime"] = li.values
            meta += [
                dict(
                    common,
                    label=names[j],
                    method="lime",
                    score=li.score[j],
                    intercept=li.intercept[j],
                    fx=li.local_pred[j],
                    n_evals=li.n_evals,
                    seconds=dt_lime,
                )
                for j in range(len(labels) if li is not None else 0)
            ]

            if grad is not None:
                gv = space.sum_samples(grad.per_sample).reshape(len(labels), leads, space.n_segments)
                rec_maps["shap_gradient"] = gv
                add = np.abs(gv.reshape(len(labels), -1).sum(1) + grad.base - grad.fx)
                meta += [
                    dict(
                        common,
                        label=names[j],
                        method="shap_gradient",
                        base=grad.base[j],
                        fx=grad.fx[j],
                        additivity_error=add[j],
                        n_evals=grad.n_evals,
                        seconds=grad_seconds,
                    )
                    for j in range(len(labels))
                ]

            att_f = None
            if att is not None:
                att_f = attention_to_space(att, step_edges, space)
                att_map = np.broadcast_to(broadcast_leads(att_f, leads), (len(labels), leads, space.n_segments))
                attrs.append(long_format(np.ascontiguousarray(att_map), eid, names, "attention", lead_names, space))

            space_maps = maps.setdefault(kind, {})
            for method, v in rec_maps.items():
                attrs.append(long_format(v, eid, names, method, lead_names, space))
                space_maps.setdefault(method, {})[eid] = v
            if att_f is not None:
                space_maps.setdefault("attention", {})[eid] = att_f
            for j in range(len(labels) if correlations else 0):  # the workflow's correlate rule does its own
                rows = record_correlations(eid, names[j], {k: v[j] for k, v in rec_maps.items()}, att_f)
                corr += [dict(r, feature_space=kind) for r in rows]

            if fcfg["enabled"] and full:
                fmaps = dict(rec_maps)
                if att_f is not None:
                    fmaps["attention"] = broadcast_leads(att_f, leads)
                c, a = faithfulness(
                    predict_proba,
                    masker,
                    labels,
                    fmaps,
                    step=curve_step(space.n_features, fcfg),
                    order=fcfg["order"],
                    random_ranking=bool(fcfg["random"]),
                    seed=rs,
                    ecg_id=eid,
                    label_names=names,
                    chunk=shap_cfg.chunk,
                )
                curves.append(c.assign(feature_space=kind))
                aucs.append(a.assign(feature_space=kind))

    corr_df = pd.DataFrame(
        corr,
        columns=CORRELATION_COLUMNS,
    )
    return Explanations(
        attributions=_concat(attrs, ATTRIBUTION_COLUMNS),
        meta=pd.DataFrame(meta).reindex(columns=META_COLUMNS),
        correlations=corr_df,
        correlation_summary=summarize(corr_df, n_boot=n_boot, seed=seed),
        curves=_concat(curves, CURVE_COLUMNS)[CURVE_COLUMNS],
        aucs=_concat(aucs, AUC_COLUMNS)[AUC_COLUMNS],
        maps=maps,
    )


MASKING_METHODS = ("shap", "lime")  # the methods that mask features with a background


def masking_methods(predict_proba, masker: Masker, labels, shap_cfg, lime_cfg, seed: int, methods=MASKING_METHODS):
    """{method: (result, seconds)} of permutation SHAP and LIME for one record in one space and background: the
    one place both orchestrators (`explain_records` for the explain stage and the app, `explain_maps` for the
    checks) compute them, with the same seed, so they agree on a record (tests/test_app.py)."""
    out = {}
    for method in methods:
        t0 = time.perf_counter()
        if method == "shap":
            result = explain_shap(predict_proba, masker, labels, shap_cfg, seed)
        elif method == "lime":
            result = explain_lime(predict_proba, masker, labels, lime_cfg, seed)
        else:
            raise ValueError(f"masking methods are {MASKING_METHODS}, not {method!r}")
        out[method] = result, time.perf_counter() - t0
    return out


def _concat(frames, columns) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def explain_maps(
    model: torch.nn.Module,
    x: np.ndarray,
    labels: Sequence[int],
    space: FeatureSpace,
    backgrounds: dict[str, np.ndarray],
    cfg,
    seed: int,
    gradient_background: np.ndarray | None = None,
    attention_density: bool = False,
    known: dict | None = None,
) -> dict[tuple[str, str], np.ndarray]:
    """{(method, background): [labels, F]} for one record, as the checks compare maps (`cfg`: a CheckConfig:
    methods, shap, lime); gradient SHAP and attention use background "-".

    Attention is its mass per feature, or its density with `attention_density` (see `attention_features`).
    known: {(method, background): [labels, F]} already computed for this record, model, space and seed (the
    explain stage's SHAP and LIME, `known_maps`): taken as they are, not computed again.
    """
    predict, attend = model_functions(model)
    shap_cfg, lime_cfg = ShapConfig.from_any(cfg.shap), LimeConfig.from_any(cfg.lime)
    out = dict(known or {})
    for bg_name, bg in backgrounds.items():
        wanted = tuple(m for m in MASKING_METHODS if m in cfg.methods and (m, bg_name) not in out)
        if not wanted:
            continue
        found = masking_methods(predict, Masker(x, space, bg), labels, shap_cfg, lime_cfg, seed, wanted)
        for method, (result, _) in found.items():
            out[(method, bg_name)] = result.values.reshape(len(labels), -1)
    if "shap_gradient" in cfg.methods and gradient_background is not None:
        # per-sample expected gradients (one "bin" per sample), summed into the record's features
        g = gradient_shap(Probabilities(model), x, labels, gradient_background, space.T, shap_cfg, seed).values
        out[("shap_gradient", "-")] = space.sum_samples(g)
    if "attention" in cfg.methods and hasattr(model, "step_to_sample_edges"):
        att = attend(np.asarray(x, dtype=np.float32)[None])[0]
        a = attention_features(att, model.step_to_sample_edges(space.T), space, attention_density)
        out[("attention", "-")] = np.repeat(a[None], len(labels), axis=0)
    return out


@dataclass
class Explained:
    """The explain stage's attributions (`attributions`: its SHAP and LIME rows) and the background it masked
    with, for the checks to reuse (`maps`) instead of explaining the same record again."""

    attributions: pd.DataFrame
    background: str
    reused: int = 0  # (record, method) maps taken from it so far

    def maps(self, eid, labels, names, space: FeatureSpace) -> dict:
        found = known_maps(self.attributions, eid, labels, names, space, self.background)
        self.reused += len(found)
        return found


def known_maps(attributions: pd.DataFrame | None, eid, labels, names, space: FeatureSpace, background: str) -> dict:
    """{(method, background): [labels, F]} of SHAP and LIME for record `eid` and every one of `labels` (indices
    into `names`) from the explain stage's attribution rows, where it explained them in `space`'s kind with
    `background`: what `explain_maps` would compute again with the trained model and the same seed (both
    take one seed per record, and one set of coalitions or samples serves every label). A method is left
    out where the stage did not explain every one of `labels` with it."""
    if attributions is None or not len(attributions):
        return {}
    rows = attributions[(attributions["ecg_id"] == eid) & (attributions["feature_space"] == space.kind)]
    out, wanted = {}, [names[j] for j in labels]
    for method in MASKING_METHODS:
        by_label = rows[rows["method"] == method].groupby("label", sort=False)["value"]
        if not set(wanted) <= set(by_label.groups):
            continue
        values = np.stack([by_label.get_group(name).to_numpy() for name in wanted])
        if values.shape[1] == space.n_features:
            out[(method, background)] = values
    return out


def flatten_maps(maps: dict, eid, labels, names) -> dict:
    """`explain_maps` output keyed by (ecg_id, label name, method, background)."""
    out = {}
    for (method, bg), values in maps.items():
        for i, j in enumerate(labels):
            out[(eid, names[j], method, bg)] = values[i]
    return out
