"""The expert_rules check of one trained model, on wave features: per test positive of each label with a cited
rule, each method's share of positive attribution on the rule's region (trained and randomised model, against the
time-share and energy-share nulls), the rule-region deletion probe, and what the model predicts for each background."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ptbxl_xai.explain.checks.alignment import energy_share, positive_share, summarize_alignment, time_share
from ptbxl_xai.explain.checks.config import CheckConfig
from ptbxl_xai.explain.checks.probe import background_check, deletion_probe, summarize_probe
from ptbxl_xai.explain.checks.randomisation import randomised_model
from ptbxl_xai.explain.checks.rules import ExpertRule, rule_mask
from ptbxl_xai.explain.methods.explain_records import Explained, explain_maps
from ptbxl_xai.explain.methods.settings import record_seed
from ptbxl_xai.explain.spaces.features import FeatureSpace
from ptbxl_xai.explain.spaces.masking import record_backgrounds
from ptbxl_xai.model.inference import model_functions


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
    explained: Explained | None = None,
) -> dict[str, pd.DataFrame]:
    """Alignment with expert rules (trained vs randomised model), deletion probe and background check.

    X: the model's inputs [n, leads, T] for the candidate records (e.g. the test fold), y_true their
    labels, spaces their feature spaces (a bins space cannot carry rules: that record is skipped with
    the reason). `explained`: the explain stage's SHAP and LIME, reused for the trained model where a record
    and its labels were explained with the same background. Returns frames: shares, alignment,
    probe_records, probe, background_records, background, skipped.
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
        rs = record_seed(cfg.seed, eid)
        for which, m in models.items():
            known = explained.maps(eid, labels, names, space) if explained is not None and which == "trained" else {}
            maps = explain_maps(m, x, labels, space, bgs, cfg, rs, gradient_background, known=known)
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
                    res = deletion_probe(predict, x, bg, space, j, masks[j], cfg.n_random_regions, record_seed(rs, j))
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
