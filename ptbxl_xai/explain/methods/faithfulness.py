"""Deletion and insertion curves of attribution maps, evaluated in one batched model call.

For a label and a map [leads, n_bins], features are ranked by decreasing attribution
("signed": strongest positive evidence first, the usual definition; "abs": largest
magnitude first). Deletion starts from the record and replaces the top-k bins by the
background; insertion starts from the background and restores the top-k bins. The label
probability is recorded every `step` bins (and at the end); AUC is the trapezoid over the
fraction of bins. A good map gives a low deletion AUC and a high insertion AUC.
Ties (e.g. attention, shared across leads) keep the lead-major order (stable sort).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ptbxl_xai.explain.spaces.masking import Masker, masked_predict

KINDS = ("deletion", "insertion")


def ranking(attribution: np.ndarray, order: str = "signed") -> np.ndarray:
    """Feature indices (lead-major) from most to least important."""
    a = np.asarray(attribution, dtype=np.float64).ravel()
    if order == "abs":
        a = np.abs(a)
    elif order != "signed":
        raise ValueError(f"order must be 'signed' or 'abs', not {order!r}")
    return np.argsort(-a, kind="stable")


def step_counts(n_features: int, step: int) -> np.ndarray:
    """0, step, 2*step, ..., n_features (the end always included)."""
    if step < 1:
        raise ValueError("step must be >= 1")
    k = np.arange(0, n_features + 1, step)
    return k if k[-1] == n_features else np.append(k, n_features)


def curve_masks(rank: np.ndarray, kind: str, step: int) -> np.ndarray:
    """[len(steps), F] keep-masks along a deletion or insertion path."""
    F = len(rank)
    ks = step_counts(F, step)
    pos = np.empty(F, dtype=np.int64)
    pos[rank] = np.arange(F)  # position of every feature in the ranking
    top = pos[None, :] < ks[:, None]  # True where the feature is among the first k
    if kind == "deletion":
        return (~top).astype(np.float32)
    if kind == "insertion":
        return top.astype(np.float32)
    raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")


def faithfulness(
    predict_proba: Callable,
    masker: Masker,
    labels: Sequence[int],
    maps: Mapping[str, np.ndarray],
    step: int = 24,
    order: str = "signed",
    random_ranking: bool = True,
    seed: int = 0,
    ecg_id=None,
    label_names=None,
    chunk: int = 512,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curves and AUCs for one record.

    maps: method -> [len(labels), leads, n_bins] (or [leads, n_bins], shared by all labels,
    e.g. attention). A seeded random ranking is added as method "random".
    Returns (curves: ecg_id, label, method, kind, k, fraction, prob;
             aucs: ecg_id, label, method, kind, auc).
    """
    F = masker.n_features
    labels = list(labels)
    names = label_names if label_names is not None else labels
    rng = np.random.default_rng(seed)
    ranks = {}
    for method, m in maps.items():
        m = np.asarray(m)
        for i in range(len(labels)):
            ranks[(method, i)] = ranking(m if m.ndim == 2 else m[i], order)
    if random_ranking:
        for i in range(len(labels)):
            ranks[("random", i)] = rng.permutation(F)
    ks = step_counts(F, step)
    blocks = [(key, kind, curve_masks(r, kind, step)) for key, r in ranks.items() for kind in KINDS]
    if not blocks:
        return _empty()
    masks = np.concatenate([b[2] for b in blocks])
    # the record and the background rows recur in every curve: evaluate each distinct mask once
    uniq, inverse = np.unique(masks, axis=0, return_inverse=True)
    probs = masked_predict(predict_proba, masker, chunk)(uniq)[np.ravel(inverse)]
    curves, aucs, pos = [], [], 0
    frac = ks / F
    for (method, i), kind, block in blocks:
        p = probs[pos : pos + len(block), labels[i]]
        pos += len(block)
        curves.append(
            pd.DataFrame(dict(ecg_id=ecg_id, label=names[i], method=method, kind=kind, k=ks, fraction=frac, prob=p))
        )
        aucs.append(dict(ecg_id=ecg_id, label=names[i], method=method, kind=kind, auc=float(np.trapezoid(p, frac))))
    return pd.concat(curves, ignore_index=True), pd.DataFrame(aucs)


def _empty():
    return (
        pd.DataFrame(columns=["ecg_id", "label", "method", "kind", "k", "fraction", "prob"]),
        pd.DataFrame(columns=["ecg_id", "label", "method", "kind", "auc"]),
    )
