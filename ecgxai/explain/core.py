"""Explanations of a multi-label ECG classifier over 12 x n_bins time-bin features.

`explain_records` runs, per record, permutation SHAP and LIME over the binary bin
features (one batched set of coalitions serves every label), optionally gradient SHAP on
the raw input and the model's attention mapped to bins, then the agreement between maps
and deletion/insertion faithfulness curves. Everything comes back as tidy DataFrames.

Defaults (2 CPU cores, HybridECGNet at T=1000; see benchmarks/explain.py):
  SHAP  npermutations=3  -> 1443 model calls per record (all labels at once)
  LIME  num_samples=1000, kernel_width=25 (x100 cosine distance), uniform-count sampling
  faithfulness step=24 bins (11 points per curve), shap/lime/attention/random rankings
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ecgxai.data.ptbxl import LEADS
from ecgxai.explain.attention import attention_to_bins, broadcast_leads
from ecgxai.explain.correlation import record_correlations, summarize
from ecgxai.explain.faithfulness import faithfulness
from ecgxai.explain.lime_explain import LimeConfig, explain_lime
from ecgxai.explain.masking import Masker
from ecgxai.explain.shap_explain import ShapConfig, explain_shap, gradient_shap, sample_background

__all__ = ["explain_records", "Explanations", "ShapConfig", "LimeConfig", "Masker", "long_format"]


def _default(fn: Callable, name: str):
    return inspect.signature(fn).parameters[name].default


@dataclass
class Explanations:
    """Tidy outputs of `explain_records` (every frame is ready for `DataFrame.to_parquet`).

    attributions: ecg_id, label, method, lead, bin, value  (method: shap, lime, attention,
                  shap_gradient; attention repeats its time profile on every lead)
    meta:         ecg_id, label, method, base, fx, additivity_error, score, intercept, n_evals, seconds
                  (base/fx/additivity for SHAP, score = LIME's weighted R^2, NaN where not applicable)
    correlations: ecg_id, label, method_a, method_b, space, variant, pearson, spearman, n, reason
    correlation_summary: method_a, method_b, space, variant, statistic, mean, median, ci_low, ci_high, n, n_nan
    curves:       ecg_id, label, method, kind, k, fraction, prob
    aucs:         ecg_id, label, method, kind, auc
    maps:         {method: {ecg_id: array [labels, leads, n_bins]}} for in-memory use
    """

    attributions: pd.DataFrame
    meta: pd.DataFrame
    correlations: pd.DataFrame
    correlation_summary: pd.DataFrame
    curves: pd.DataFrame
    aucs: pd.DataFrame
    maps: dict = field(default_factory=dict, repr=False)


def long_format(values: np.ndarray, ecg_id, labels: Sequence, method: str, lead_names: Sequence) -> pd.DataFrame:
    """[labels, leads, n_bins] -> rows (ecg_id, label, method, lead, bin, value)."""
    L, leads, n_bins = values.shape
    return pd.DataFrame(
        dict(
            ecg_id=ecg_id,
            label=np.repeat(np.asarray(labels, dtype=object), leads * n_bins),
            method=method,
            lead=np.tile(np.repeat(np.asarray(lead_names, dtype=object), n_bins), L),
            bin=np.tile(np.arange(n_bins), L * leads),
            value=values.ravel().astype(np.float64),
        )
    )


def _record_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def explain_records(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    X_records: np.ndarray,
    labels_per_record: Sequence[Sequence[int]],
    n_bins: int = 20,
    background: str = "zero",
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
) -> Explanations:
    """Explain records [n, leads, T] for their labels (indices into the model's outputs).

    predict_proba(x [m, leads, T] float32) -> probabilities [m, C]: the batched model call.
    attention_fn(x [m, leads, T]) -> attention [m, T'] with `step_edges` ([T'+1], [T', 2] or
    callable T -> edges) giving each step's input span. gradient_model: a torch module
    x -> probabilities [B, C] for gradient SHAP, with `gradient_background` training records.
    faithfulness_cfg: {"enabled": True, "step": 24, "order": "signed", "random": True}.
    correlations=False leaves `correlations`/`correlation_summary` empty (computed elsewhere).
    Record i uses its own seed derived from (seed, i), so results do not depend on batching.
    """
    X = np.asarray(X_records, dtype=np.float32)
    if X.ndim != 3 or len(labels_per_record) != len(X):
        raise ValueError("X_records must be [n, leads, T] with one label list per record")
    n, leads, T = X.shape
    shap_cfg, lime_cfg = ShapConfig.from_any(shap_cfg), LimeConfig.from_any(lime_cfg)
    fcfg = {"enabled": True, "step": _default(faithfulness, "step"), "order": "signed", "random": True}
    fcfg.update(faithfulness_cfg or {})
    if attention_fn is not None and step_edges is None:
        raise ValueError("attention_fn needs step_edges (each attention step's input sample span)")
    ids = list(ecg_ids) if ecg_ids is not None else list(range(n))
    lead_names = list(lead_names) if lead_names is not None else (list(LEADS) if leads == 12 else list(range(leads)))
    use_grad = gradient_model is not None and shap_cfg.gradient
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
        rs, eid = _record_seed(seed, i), ids[i]
        masker = Masker(X[i], n_bins, background, lead_means, blur_sigma_s, rate)
        rec_maps = {}

        t0 = time.perf_counter()
        sh = explain_shap(predict_proba, masker, labels, shap_cfg, rs)
        rec_maps["shap"] = sh.values
        meta += [
            dict(
                ecg_id=eid,
                label=names[j],
                method="shap",
                base=sh.base[j],
                fx=sh.fx[j],
                additivity_error=sh.additivity[j],
                n_evals=sh.n_evals,
                seconds=time.perf_counter() - t0,
            )
            for j in range(len(labels))
        ]

        t0 = time.perf_counter()
        li = explain_lime(predict_proba, masker, labels, lime_cfg, rs)
        rec_maps["lime"] = li.values
        meta += [
            dict(
                ecg_id=eid,
                label=names[j],
                method="lime",
                score=li.score[j],
                intercept=li.intercept[j],
                fx=li.local_pred[j],
                n_evals=li.n_evals,
                seconds=time.perf_counter() - t0,
            )
            for j in range(len(labels))
        ]

        if use_grad:
            t0 = time.perf_counter()
            gr = gradient_shap(gradient_model, X[i], labels, grad_bg, n_bins, shap_cfg, rs)
            rec_maps["shap_gradient"] = gr.values
            meta += [
                dict(
                    ecg_id=eid,
                    label=names[j],
                    method="shap_gradient",
                    base=gr.base[j],
                    fx=gr.fx[j],
                    additivity_error=gr.additivity[j],
                    n_evals=gr.n_evals,
                    seconds=time.perf_counter() - t0,
                )
                for j in range(len(labels))
            ]

        att_bins = None
        if attention_fn is not None:
            att = np.asarray(attention_fn(X[i : i + 1]), dtype=np.float64)[0]
            att_bins = attention_to_bins(att, step_edges, T, n_bins)
            att_map = np.broadcast_to(broadcast_leads(att_bins, leads), (len(labels), leads, n_bins))
            attrs.append(long_format(np.ascontiguousarray(att_map), eid, names, "attention", lead_names))

        for method, v in rec_maps.items():
            attrs.append(long_format(v, eid, names, method, lead_names))
            maps.setdefault(method, {})[eid] = v
        if att_bins is not None:
            maps.setdefault("attention", {})[eid] = att_bins
        for j in range(len(labels) if correlations else 0):  # the workflow's correlate rule does its own
            corr += record_correlations(eid, names[j], {k: v[j] for k, v in rec_maps.items()}, att_bins)

        if fcfg["enabled"]:
            fmaps = dict(rec_maps)
            if att_bins is not None:
                fmaps["attention"] = broadcast_leads(att_bins, leads)
            c, a = faithfulness(
                predict_proba,
                masker,
                labels,
                fmaps,
                step=int(fcfg["step"]),
                order=fcfg["order"],
                random_ranking=bool(fcfg["random"]),
                seed=rs,
                ecg_id=eid,
                label_names=names,
                chunk=shap_cfg.chunk,
            )
            curves.append(c)
            aucs.append(a)

    corr_df = pd.DataFrame(
        corr,
        columns=["ecg_id", "label", "method_a", "method_b", "space", "variant", "pearson", "spearman", "n", "reason"],
    )
    meta_cols = [
        "ecg_id",
        "label",
        "method",
        "base",
        "fx",
        "additivity_error",
        "score",
        "intercept",
        "n_evals",
        "seconds",
    ]
    return Explanations(
        attributions=_concat(attrs, ["ecg_id", "label", "method", "lead", "bin", "value"]),
        meta=pd.DataFrame(meta).reindex(columns=meta_cols),
        correlations=corr_df,
        correlation_summary=summarize(corr_df, n_boot=n_boot, seed=seed),
        curves=_concat(curves, ["ecg_id", "label", "method", "kind", "k", "fraction", "prob"]),
        aucs=_concat(aucs, ["ecg_id", "label", "method", "kind", "auc"]),
        maps=maps,
    )


def _concat(frames, columns) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
