"""Self-consistency across training seeds: the same records explained by models trained with different seeds (the
runs of `checks.seed_runs`, e.g. the ablation runs abl-<variant>-s<seed>) should agree (the `seed_consistency` rule)."""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ptbxl_xai.explain.checks.config import CheckConfig
from ptbxl_xai.explain.checks.randomisation import rank_correlation, summarize_correlations
from ptbxl_xai.explain.methods.explain_records import explain_maps, flatten_maps
from ptbxl_xai.explain.methods.settings import record_seed
from ptbxl_xai.explain.spaces.features import FeatureSpace
from ptbxl_xai.explain.spaces.masking import record_backgrounds


def pairwise_consistency(maps_by_run: dict[str, dict], keys: list[tuple]) -> pd.DataFrame:
    """Rank agreement of the same record-label explained by different runs (e.g. training seeds).

    maps_by_run: run -> {(ecg_id, label, method): attribution [F]}. Rows: ecg_id, label, method,
    run_a, run_b, signed, absolute, reason; one per key and pair of runs that both explained it.
    """
    rows = []
    for a, b in combinations(sorted(maps_by_run), 2):
        for key in keys:
            va, vb = maps_by_run[a].get(key), maps_by_run[b].get(key)
            if va is None or vb is None:
                continue
            s, ab, reason = rank_correlation(va, vb)
            rows.append(
                dict(ecg_id=key[0], label=key[1], method=key[2], run_a=a, run_b=b, signed=s, absolute=ab, reason=reason)
            )
    return pd.DataFrame(rows, columns=["ecg_id", "label", "method", "run_a", "run_b", "signed", "absolute", "reason"])


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
                m,
                X[i],
                labels_per_record[i],
                spaces[i],
                bgs,
                cfg,
                record_seed(cfg.seed, ecg_ids[i]),
                gradient_background,
                True,
            )
            flat = flatten_maps(maps, ecg_ids[i], labels_per_record[i], names)
            by_run[run].update({k[:3]: v for k, v in flat.items()})
            keys |= {k[:3] for k in flat}
    records = pairwise_consistency(by_run, sorted(keys, key=str))
    return dict(records=records, summary=summarize_correlations(records, ["method"], cfg.n_boot, seed=cfg.seed))
