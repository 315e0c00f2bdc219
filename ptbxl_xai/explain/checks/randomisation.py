"""Sanity checks for explanations (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", NeurIPS).

Model-parameter randomisation: re-initialise the network's layers one after another, cascading from the
head towards the input (seeded), re-explain the same records, and measure how far each method's
explanation moves from the trained model's: Spearman rank correlation over the features, for the signed
and for the absolute attributions. A method whose explanation survives randomisation explains the input,
not the model. Absolute values often survive where signed ones do not (SHAP magnitude follows the
input's energy), which is why both are reported: anything computed from |attribution| (e.g. the
|SHAP|-attention correlation) inherits that input dependence.

`randomisation_check` runs the cascade on a sample of records (the `sanity` rule); agreement across training
seeds is `ptbxl_xai.explain.checks.seeds`.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn
from tqdm.auto import tqdm

from ptbxl_xai.evaluation.bootstrap import mean_ci
from ptbxl_xai.explain.checks.config import CheckConfig
from ptbxl_xai.explain.methods.explain_records import explain_maps, flatten_maps
from ptbxl_xai.explain.methods.settings import record_seed
from ptbxl_xai.explain.spaces.features import FeatureSpace
from ptbxl_xai.explain.spaces.masking import record_backgrounds

VARIANTS = ("signed", "absolute")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def _owns_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def cascade_units(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The model's layers in forward order, as (name, modules) units that are re-initialised together.

    Sequential containers are opened (a conv block's Conv1d is one unit); a normalisation layer joins the
    unit before it (conv + its BatchNorm); any other child with parameters (LSTM, attention, head) is
    one unit. Modules are taken in registration order, which is the forward order of these models.
    """
    units: list[tuple[str, list[nn.Module]]] = []

    def visit(prefix: str, module: nn.Module):
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                visit(full + ".", child)
            elif not _owns_parameters(child):
                continue
            elif isinstance(child, _NORMS) and units:
                units[-1][1].append(child)
            else:
                units.append((full, [child]))

    visit("", model)
    return units


def _reinit(modules: list[nn.Module], seed: int) -> None:
    torch.manual_seed(seed)
    for module in modules:
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
            if hasattr(sub, "reset_running_stats"):
                sub.reset_running_stats()


def cascading_randomisation(model: nn.Module, seed: int = 0, max_steps: int | None = None):
    """Yield (step, layer name, model copy) with the top `step` units re-initialised (head first).

    Step k re-initialises units[-k:], cumulatively, each unit from its own seed (seed, k), so a step's
    weights do not depend on how many steps are taken. The trained model is never modified.
    """
    units = cascade_units(model)
    steps = len(units) if max_steps is None else min(max_steps, len(units))
    current = copy.deepcopy(model).eval()
    units_copy = cascade_units(current)
    for k in range(1, steps + 1):
        name, modules = units_copy[-k]
        _reinit(modules, int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
        yield k, name, copy.deepcopy(current).eval()


def randomised_model(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model with every layer re-initialised (the last step of the cascade)."""
    last = None
    for _, _, m in cascading_randomisation(model, seed):
        last = m
    if last is None:
        raise ValueError("model has no parameters to randomise")
    return last


def rank_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, float, str]:
    """Spearman rank correlation of two attribution vectors, signed and absolute: (signed, absolute, reason).

    A constant vector has no ranking: NaN with a reason (e.g. uniform attention of a randomised model).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    out, reasons = [], []
    for u, v, what in ((a, b, "signed"), (np.abs(a), np.abs(b), "absolute")):
        if np.ptp(u) == 0 or np.ptp(v) == 0:
            out.append(float("nan"))
            reasons.append(f"{what}: constant attribution")
        else:
            out.append(float(spearmanr(u, v).statistic))
    return out[0], out[1], "; ".join(reasons)


def summarize_correlations(
    rows: pd.DataFrame, by: list[str], n_boot: int = 2000, ci: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Mean signed/absolute Spearman with bootstrap intervals over record-labels, per group `by`."""
    out = []
    for key, g in rows.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for variant in VARIANTS:
            m, lo, hi, n = mean_ci(g[variant], n_boot, ci, seed)
            row.update({variant: m, f"{variant}_low": lo, f"{variant}_high": hi})
        row["n"] = n
        row["n_nan"] = int(g[list(VARIANTS)].isna().any(axis=1).sum())
        out.append(row)
    cols = by + [c for v in VARIANTS for c in (v, f"{v}_low", f"{v}_high")] + ["n", "n_nan"]
    return pd.DataFrame(out, columns=cols)


def method_flags(summary: pd.DataFrame, max_rank_correlation: float = 0.5) -> pd.DataFrame:
    """Pass/fail per method from the fully randomised step of the cascade.

    A method fails when its signed explanations still correlate with the trained model's (the interval's
    lower bound at or above `max_rank_correlation`): it does not depend on what the model learned.
    It passes with a caution when only |attribution| survives, naming the quantities that inherit it.
    Rows: method, flag (pass | caution | fail), signed, absolute (mean Spearman), note.
    """
    out = []
    if summary.empty:
        return pd.DataFrame(columns=["method", "flag", "signed", "absolute", "note"])
    last = summary[summary.step == summary.step.max()]
    for _, r in last.iterrows():
        signed_bad = np.isfinite(r.signed_low) and r.signed_low >= max_rank_correlation
        abs_bad = np.isfinite(r.absolute_low) and r.absolute_low >= max_rank_correlation
        if r.n == 0:
            flag, note = "untested", "no record-label had a rankable explanation"
        elif signed_bad:
            flag = "fail"
            note = (
                f"explanations survive full weight randomisation (signed Spearman {r.signed:.2f}, "
                f"95% CI low {r.signed_low:.2f} >= {max_rank_correlation}): they follow the input, not the model"
            )
        elif abs_bad:
            flag = "caution"
            note = (
                f"signed ranks change (Spearman {r.signed:.2f}) but |attribution| keeps {r.absolute:.2f} after "
                f"randomisation: magnitudes follow the input, so |{r.method}| statistics (e.g. |SHAP|-attention "
                "correlation, share of |attribution| on a region) are partly input-driven"
            )
        else:
            flag = "pass"
            note = f"explanations change under randomisation (signed {r.signed:.2f}, absolute {r.absolute:.2f})"
        out.append(dict(method=r.method, flag=flag, signed=r.signed, absolute=r.absolute, note=note))
    return pd.DataFrame(out, columns=["method", "flag", "signed", "absolute", "note"])


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
            model,
            X[i],
            labels_per_record[i],
            spaces[i],
            bgs,
            cfg,
            record_seed(cfg.seed, ecg_ids[i]),
            gradient_background,
            True,
        )
        trained.update(flatten_maps(maps, ecg_ids[i], labels_per_record[i], names))
    steps = list(cascading_randomisation(model, cfg.seed))
    for k, layer, m in tqdm(steps, disable=not progress, desc="randomisation cascade", unit="step"):
        for i, bgs in per_record_inputs:
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
            for key, v in flatten_maps(maps, ecg_ids[i], labels_per_record[i], names).items():
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
