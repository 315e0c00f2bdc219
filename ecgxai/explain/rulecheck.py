"""Expert-rule agreement and sanity checks for one trained model, on wave features.

`explain_maps` explains one record with SHAP (permutation), LIME, gradient SHAP and attention on a
`FeatureSpace`, through the explain package's estimators, so the trained and the randomised model are
explained by exactly the same code. `expert_rule_check` runs the alignment shares, the deletion probe
and the background check; `randomisation_check` the cascading randomisation; `seed_consistency` the
agreement across training seeds. Each returns tidy DataFrames (see `ecgxai.explain.alignment`,
`probe`, `sanity`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ecgxai.explain.alignment import energy_share, positive_share, summarize_alignment, time_share
from ecgxai.explain.attention import attention_to_bins
from ecgxai.explain.expert_rules import ExpertRule, rule_mask
from ecgxai.explain.features import FeatureSpace
from ecgxai.explain.lime_explain import LimeConfig, explain_lime
from ecgxai.explain.masking import Masker, background_signal
from ecgxai.explain.probe import background_check, deletion_probe, summarize_probe
from ecgxai.explain.sanity import (
    cascading_randomisation,
    method_flags,
    pairwise_consistency,
    randomised_model,
    rank_correlation,
    summarize_correlations,
)
from ecgxai.explain.shap_explain import ShapConfig, explain_shap, gradient_shap
from ecgxai.model.inference import Probabilities, model_functions

log = logging.getLogger(__name__)

METHODS = ("shap", "lime", "shap_gradient", "attention")
MASKING_METHODS = ("shap", "lime")  # depend on the background; gradient SHAP and attention do not


@dataclass
class CheckConfig:
    """Settings of the expert-rule and sanity checks (config keys `checks.*`)."""

    records_per_label: int = 20  # test positives per label with a rule (seeded sample)
    backgrounds: Sequence[str] = ("zero",)  # background kinds compared (masking methods and probe)
    methods: Sequence[str] = METHODS
    n_random_regions: int = 5  # random same-size regions per record in the deletion probe
    sanity_records: int = 10  # records re-explained at every step of the cascading randomisation
    max_rank_correlation: float = 0.5  # a method fails when signed Spearman after randomisation stays above
    seed: int = 0
    n_boot: int = 2000
    shap: dict = field(default_factory=dict)
    lime: dict = field(default_factory=dict)


def attention_features(attention: np.ndarray, step_edges, space: FeatureSpace, as_density: bool = False) -> np.ndarray:
    """Attention [T'] -> [F]: each step's weight spread over its input samples, summed per segment.

    Mass (default): the attention on each segment, shared by all leads (divided by the number of
    leads), so the features sum to 1 and uniform attention gives exactly the time share; this is what
    a share of attribution is compared with. Density (`as_density`): mass per sample of the segment,
    so a ranking of features does not simply follow segment durations (used for rank correlations).
    """
    per_sample = attention_to_bins(np.asarray(attention, dtype=np.float64), step_edges, space.T, space.T)
    per_segment = np.bincount(space.segment_of_sample, weights=per_sample, minlength=space.n_segments)
    if as_density:
        n = space.segment_samples
        per_segment = np.where(n > 0, per_segment / np.maximum(n, 1), 0.0)
    return np.tile(per_segment, space.n_leads) / space.n_leads


def explain_maps(
    model: torch.nn.Module,
    x: np.ndarray,
    labels: Sequence[int],
    space: FeatureSpace,
    backgrounds: dict[str, np.ndarray],
    cfg: CheckConfig,
    seed: int,
    gradient_background: np.ndarray | None = None,
    attention_density: bool = False,
) -> dict[tuple[str, str], np.ndarray]:
    """{(method, background): [labels, F]} for one record; gradient SHAP and attention use background "-".

    Attention is its mass per feature, or its density with `attention_density` (see `attention_features`).
    """
    predict, attend = model_functions(model)
    shap_cfg, lime_cfg = ShapConfig.from_any(cfg.shap), LimeConfig.from_any(cfg.lime)
    out = {}
    for bg_name, bg in backgrounds.items():
        masker = Masker(x, space, bg)
        if "shap" in cfg.methods:
            out[("shap", bg_name)] = explain_shap(predict, masker, labels, shap_cfg, seed).values.reshape(
                len(labels), -1
            )
        if "lime" in cfg.methods:
            out[("lime", bg_name)] = explain_lime(predict, masker, labels, lime_cfg, seed).values.reshape(
                len(labels), -1
            )
    if "shap_gradient" in cfg.methods and gradient_background is not None:
        # per-sample expected gradients (one "bin" per sample), summed into the record's features
        g = gradient_shap(Probabilities(model), x, labels, gradient_background, space.T, shap_cfg, seed).values
        out[("shap_gradient", "-")] = space.sum_samples(g)
    if "attention" in cfg.methods and hasattr(model, "step_to_sample_edges"):
        att = attend(np.asarray(x, dtype=np.float32)[None])[0]
        a = attention_features(att, model.step_to_sample_edges(space.T), space, attention_density)
        out[("attention", "-")] = np.repeat(a[None], len(labels), axis=0)
    return out


def record_backgrounds(
    x: np.ndarray,
    kinds: Sequence[str],
    lead_means=None,
    blur_sigma_s: float = 0.1,
    rate: int = 100,
    templates=None,
    space: FeatureSpace | None = None,
) -> dict[str, np.ndarray]:
    """The all-masked record [leads, T] of each background kind for record x.

    `templates`: {kind: callable(x, space) -> [leads, T]} for kinds the masking module does not build
    (e.g. the normal-beat template fitted to the record's segments).
    """
    out = {}
    for kind in kinds:
        if templates and kind in templates:
            out[kind] = np.asarray(templates[kind](x, space), dtype=np.float32)
        else:
            out[kind] = background_signal(x, kind, lead_means, blur_sigma_s, rate)
    return out


def select_positives(
    y_true: np.ndarray, label_names: Sequence[str], rules: dict, count: int, seed: int = 0
) -> dict[int, list[int]]:
    """Row -> label indices to check: per label with a rule, up to `count` positive records (seeded)."""
    rng = np.random.default_rng(seed)
    chosen: dict[int, list[int]] = {}
    for j, name in enumerate(label_names):
        if name not in rules:
            continue
        rows = np.flatnonzero(np.asarray(y_true)[:, j] > 0)
        if len(rows) > count:
            rows = np.sort(rng.choice(rows, size=count, replace=False))
        for r in rows:
            chosen.setdefault(int(r), []).append(j)
    return dict(sorted(chosen.items()))


def _seed(seed: int, *keys) -> int:
    return int(np.random.SeedSequence([seed, *[int(k) for k in keys]]).generate_state(1)[0])


def expert_rule_check(
    model: torch.nn.Module,
    X: np.ndarray,
    ecg_ids: Sequence,
    y_true: np.ndarray,
    label_names: Sequence[str],
    spaces: Sequence[FeatureSpace],
    rules: dict[str, ExpertRule],
    cfg: CheckConfig,
    *,
    thresholds=0.5,
    lead_means=None,
    blur_sigma_s: float = 0.1,
    rate: int = 100,
    gradient_background: np.ndarray | None = None,
    templates=None,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Alignment with expert rules (trained vs randomised model), deletion probe and background check.

    X: the model's inputs [n, leads, T] for the candidate records (e.g. the test fold), y_true their
    labels, spaces their feature spaces (a bins space cannot carry rules: that record is skipped with
    the reason). Returns frames: shares, alignment, probe_records, probe, background_records,
    background, skipped.
    """
    names = list(label_names)
    chosen = select_positives(y_true, names, rules, cfg.records_per_label, cfg.seed)
    random_model = randomised_model(model, cfg.seed)
    models = {"trained": model, "randomised": random_model}
    share_rows, probe_rows, skipped = [], [], []
    bg_arrays: dict[str, list] = {k: [] for k in cfg.backgrounds}
    bg_ids = []
    for row, labels in tqdm(chosen.items(), disable=not progress, desc="expert rules", unit="record"):
        eid, space, x = ecg_ids[row], spaces[row], X[row]
        if space.kind != "waves":
            for j in labels:
                skipped.append(dict(ecg_id=eid, label=names[j], reason="; ".join(space.notes) or "not delineated"))
            continue
        bgs = record_backgrounds(x, cfg.backgrounds, lead_means, blur_sigma_s, rate, templates, space)
        for k, v in bgs.items():
            bg_arrays[k].append(v)
        bg_ids.append(eid)
        masks = {j: rule_mask(rules[names[j]], space) for j in labels}
        nulls = {j: (time_share(space, m), energy_share(x, space, m)) for j, m in masks.items()}
        rs = _seed(cfg.seed, row)
        for which, m in models.items():
            maps = explain_maps(m, x, labels, space, bgs, cfg, rs, gradient_background)
            for (method, bg_name), values in maps.items():
                for bgk in cfg.backgrounds if bg_name == "-" else [bg_name]:
                    # background-free methods are repeated under each background so every table row is complete
                    for i, j in enumerate(labels):
                        share_rows.append(
                            dict(
                                ecg_id=eid,
                                label=names[j],
                                method=method,
                                background=bgk,
                                model=which,
                                region=rules[names[j]].region,
                                share=float(positive_share(values[i], masks[j])),
                                time_share=nulls[j][0],
                                energy_share=nulls[j][1],
                            )
                        )
            predict, _ = model_functions(m)
            for bg_name, bg in bgs.items():
                for j in labels:
                    res = deletion_probe(predict, x, bg, space, j, masks[j], cfg.n_random_regions, _seed(rs, j))
                    probe_rows.append(
                        dict(
                            ecg_id=eid,
                            label=names[j],
                            background=bg_name,
                            model=which,
                            region=rules[names[j]].region,
                            **res,
                        )
                    )
    shares = pd.DataFrame(share_rows)
    probes = pd.DataFrame(probe_rows)
    predict, _ = model_functions(model)
    if bg_ids:
        bg_records, bg_summary = background_check(
            predict, {k: np.stack(v) for k, v in bg_arrays.items()}, bg_ids, names, thresholds
        )
    else:
        bg_records, bg_summary = pd.DataFrame(), pd.DataFrame()
    return dict(
        shares=shares,
        alignment=summarize_alignment(shares, cfg.n_boot, seed=cfg.seed),
        probe_records=probes,
        probe=summarize_probe(probes, cfg.n_boot, seed=cfg.seed),
        background_records=bg_records,
        background=bg_summary,
        skipped=pd.DataFrame(skipped, columns=["ecg_id", "label", "reason"]),
    )


def _flatten(maps: dict, eid, labels, names) -> dict:
    out = {}
    for (method, bg), values in maps.items():
        for i, j in enumerate(labels):
            out[(eid, names[j], method, bg)] = values[i]
    return out


def randomisation_check(
    model: torch.nn.Module,
    X: np.ndarray,
    ecg_ids: Sequence,
    labels_per_record: Sequence[Sequence[int]],
    label_names: Sequence[str],
    spaces: Sequence[FeatureSpace],
    cfg: CheckConfig,
    *,
    lead_means=None,
    blur_sigma_s: float = 0.1,
    rate: int = 100,
    gradient_background: np.ndarray | None = None,
    templates=None,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Cascading randomisation (head first): Spearman of each step's explanations with the trained ones.

    Uses the first `cfg.sanity_records` records and the first background of `cfg.backgrounds`.
    Returns frames: records (ecg_id, label, method, background, step, layer, signed, absolute, reason),
    summary (per method and step), flags (per method, from the fully randomised step).
    """
    names = list(label_names)
    bg_kind = list(cfg.backgrounds)[:1]
    n = min(cfg.sanity_records, len(X))
    rows = []
    trained: dict = {}
    per_record_inputs = []
    for i in range(n):
        if not labels_per_record[i]:
            continue
        bgs = record_backgrounds(X[i], bg_kind, lead_means, blur_sigma_s, rate, templates, spaces[i])
        per_record_inputs.append((i, bgs))
        maps = explain_maps(
            model, X[i], labels_per_record[i], spaces[i], bgs, cfg, _seed(cfg.seed, i), gradient_background, True
        )
        trained.update(_flatten(maps, ecg_ids[i], labels_per_record[i], names))
    steps = list(cascading_randomisation(model, cfg.seed))
    for k, layer, m in tqdm(steps, disable=not progress, desc="randomisation cascade", unit="step"):
        for i, bgs in per_record_inputs:
            maps = explain_maps(
                m, X[i], labels_per_record[i], spaces[i], bgs, cfg, _seed(cfg.seed, i), gradient_background, True
            )
            for key, v in _flatten(maps, ecg_ids[i], labels_per_record[i], names).items():
                s, a, reason = rank_correlation(trained[key], v)
                rows.append(
                    dict(
                        ecg_id=key[0],
                        label=key[1],
                        method=key[2],
                        background=key[3],
                        step=k,
                        layer=layer,
                        signed=s,
                        absolute=a,
                        reason=reason,
                    )
                )
    records = pd.DataFrame(
        rows, columns=["ecg_id", "label", "method", "background", "step", "layer", "signed", "absolute", "reason"]
    )
    summary = summarize_correlations(records, ["method", "step", "layer"], cfg.n_boot, seed=cfg.seed)
    return dict(records=records, summary=summary, flags=method_flags(summary, cfg.max_rank_correlation))


def seed_consistency(
    models: dict[str, torch.nn.Module],
    X: np.ndarray,
    ecg_ids: Sequence,
    labels_per_record: Sequence[Sequence[int]],
    label_names: Sequence[str],
    spaces: Sequence[FeatureSpace],
    cfg: CheckConfig,
    *,
    lead_means=None,
    blur_sigma_s: float = 0.1,
    rate: int = 100,
    gradient_background: np.ndarray | None = None,
    templates=None,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """The same records explained by models trained with different seeds: pairwise Spearman per method.

    Returns frames: records (per record-label, method, pair of runs) and summary (per method).
    """
    if len(models) < 2:
        raise ValueError(f"seed consistency needs at least two runs, got {sorted(models)}")
    names = list(label_names)
    bg_kind = list(cfg.backgrounds)[:1]
    n = min(cfg.sanity_records, len(X))
    by_run: dict[str, dict] = {run: {} for run in models}
    keys = set()
    for i in tqdm(range(n), disable=not progress, desc="seed consistency", unit="record"):
        if not labels_per_record[i]:
            continue
        bgs = record_backgrounds(X[i], bg_kind, lead_means, blur_sigma_s, rate, templates, spaces[i])
        for run, m in models.items():
            maps = explain_maps(
                m, X[i], labels_per_record[i], spaces[i], bgs, cfg, _seed(cfg.seed, i), gradient_background, True
            )
            flat = _flatten(maps, ecg_ids[i], labels_per_record[i], names)
            by_run[run].update({k[:3]: v for k, v in flat.items()})
            keys |= {k[:3] for k in flat}
    records = pairwise_consistency(by_run, sorted(keys, key=str))
    return dict(records=records, summary=summarize_correlations(records, ["method"], cfg.n_boot, seed=cfg.seed))
