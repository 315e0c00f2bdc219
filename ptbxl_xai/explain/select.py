"""Which test records to explain, and which labels of each.

Strategies (all deterministic; `random` through its seed), `count` records in total:
  confident_tp  true positives ranked by probability, taken round-robin over labels
                (each label's best, then each label's second best, ...) so every label
                with true positives is represented; a record is taken once.
  errors        false positives (confidence p) and false negatives (confidence 1 - p),
                most confident first over all labels; a record is taken once.
  random        a seeded sample without replacement.
Ties in probability are broken by row order (stable sorts).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

STRATEGIES = ("confident_tp", "errors", "random")


def _thresholds(thresholds, n_labels: int) -> np.ndarray:
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (n_labels,))
    return t.copy()


def select_records(
    probs: np.ndarray,
    y_true: np.ndarray,
    ecg_ids: Sequence,
    strategy: str,
    count: int,
    thresholds=0.5,
    seed: int = 0,
    label_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Selected records in selection order: ecg_id, row, strategy, rank, label, prob, reason.

    `label`/`prob`/`reason` say why the record was taken (for random: its top label).
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true).astype(bool)
    ids = np.asarray(ecg_ids)
    n, C = probs.shape
    if y.shape != probs.shape or len(ids) != n:
        raise ValueError("probs, y_true and ecg_ids must describe the same records")
    names = list(label_names) if label_names is not None else list(range(C))
    thr = _thresholds(thresholds, C)
    pred = probs >= thr
    picks: list[tuple[int, int, str]] = []  # (row, label, reason)
    taken: set[int] = set()

    def take(row, lab, reason):
        if row not in taken and len(picks) < count:
            taken.add(row)
            picks.append((row, lab, reason))

    if strategy == "confident_tp":
        queues = []
        for c in range(C):
            rows = np.flatnonzero(y[:, c] & pred[:, c])
            queues.append(rows[np.argsort(-probs[rows, c], kind="stable")])
        for r in range(max((len(q) for q in queues), default=0)):
            for c, q in enumerate(queues):
                if r < len(q):
                    take(int(q[r]), c, "true_positive")
    elif strategy == "errors":
        rows, labs = np.nonzero(pred != y)
        fp = pred[rows, labs]
        conf = np.where(fp, probs[rows, labs], 1.0 - probs[rows, labs])
        for j in np.argsort(-conf, kind="stable"):
            take(int(rows[j]), int(labs[j]), "false_positive" if fp[j] else "false_negative")
    elif strategy == "random":
        rng = np.random.default_rng(seed)
        for row in rng.permutation(n)[:count]:
            take(int(row), int(np.argmax(probs[row])), "random")
    else:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    return pd.DataFrame(
        dict(
            ecg_id=[ids[r] for r, _, _ in picks],
            row=[r for r, _, _ in picks],
            strategy=strategy,
            rank=np.arange(len(picks)),
            label=[names[c] for _, c, _ in picks],
            prob=[probs[r, c] for r, c, _ in picks],
            reason=[w for _, _, w in picks],
        )
    )


def labels_to_explain(probs: np.ndarray, thresholds=0.5, top_k: int = 3) -> list[list[int]]:
    """Per record: predicted labels (p >= threshold) plus the top-k by probability,
    deduplicated and ordered by decreasing probability."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    thr = _thresholds(thresholds, probs.shape[1])
    out = []
    for p in probs:
        order = np.argsort(-p, kind="stable")
        chosen = set(order[:top_k].tolist()) | set(np.flatnonzero(p >= thr).tolist())
        out.append([int(c) for c in order if c in chosen])
    return out
