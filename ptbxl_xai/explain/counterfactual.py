"""Counterfactuals: the fewest features that, made normal, turn a positive call negative.

"What would make this ECG normal?" is answered in the record's own feature space (wave
segments per lead, or time bins): a feature made normal is replaced by the `Masker`'s
background (for "normal_template" the NORM template's segment, stretched to the record's), so
every answer reads "P(MI) 0.81 -> 0.22 if the ST segments of V1, V2 and V3 were normal".

Search (deterministic, a bounded number of model calls):
1. one batch occluding every single feature ranks them by how far each alone lowers P(target),
   ties (a plateau, e.g. two leads either of which keeps the call) by how far the feature lies
   from its normal version; features equal to it are never candidates;
2. best-first greedy over the top `candidates`: each step tries every remaining candidate
   added to the current set in one batch and keeps the one with the lowest objective,
   P(target) + `keep_others` x (other labels whose decision flipped), until P(target) falls
   below the label's threshold, or `max_features` / `max_calls` ends it (status "not flipped");
3. pruning: while some single feature can leave the set and it still flips, drop the one whose
   removal keeps P(target) lowest, so the answer is minimal in the sense that no feature of
   it is superfluous (not a global minimum, which is combinatorial).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ptbxl_xai.explain.spaces.masking import Masker

STATUSES = ("flipped", "not flipped", "not predicted")


@dataclass
class Counterfactual:
    """The answer for one record and label; `features` are the names made normal."""

    label: str
    status: str  # one of STATUSES
    reason: str
    p_before: float
    p_after: float
    threshold: float
    features: list[str] = field(default_factory=list)
    others_changed: list[str] = field(default_factory=list)
    n_features_total: int = 0
    n_calls: int = 0

    @property
    def valid(self) -> bool:
        return self.status == "flipped"

    def sentence(self) -> str:
        if self.status == "not predicted":
            return f"P({self.label}) {self.p_before:.2f} is below its threshold {self.threshold:.2f}: nothing to undo"
        what = ", ".join(self.features) if self.features else "nothing"
        verb = "if" if self.valid else "even if"
        tail = "" if self.valid else f" (not below {self.threshold:.2f}: {self.reason})"
        return (
            f"P({self.label}) {self.p_before:.2f} -> {self.p_after:.2f} {verb} {what} were normal "
            f"({len(self.features)} of {self.n_features_total} features){tail}"
        )

    def as_row(self) -> dict:
        return {
            "label": self.label,
            "valid": self.valid,
            "status": self.status,
            "reason": self.reason,
            "p_before": self.p_before,
            "p_after": self.p_after,
            "threshold": self.threshold,
            "n_changed": len(self.features),
            "changed": ";".join(self.features),
            "others_changed": ";".join(self.others_changed),
            "n_calls": self.n_calls,
            "sentence": self.sentence(),
        }


def feature_counterfactual(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    masker: Masker,
    label_names: Sequence[str],
    thresholds: Sequence[float],
    label: str,
    candidates: int = 16,
    max_features: int = 12,
    max_calls: int = 600,
    keep_others: float = 1.0,
    ignore_others: Sequence[str] = ("NORM",),
) -> Counterfactual:
    """Search the smallest set of features whose normal version drops P(label) below its threshold.

    `predict_proba` maps signals [m, leads, T] to probabilities [m, labels]; `thresholds` are
    the run's per-label decision thresholds. Labels in `ignore_others` (the normal class, which
    is meant to change) do not count as "other decisions changed".
    """
    names = list(label_names)
    if label not in names:
        raise ValueError(f"label {label!r} is not one of the model's labels {names}")
    if len(thresholds) != len(names):
        raise ValueError(f"{len(thresholds)} thresholds for {len(names)} labels")
    if candidates < 1 or max_features < 1 or max_calls < 2:
        raise ValueError("candidates and max_features must be >= 1, max_calls >= 2")
    k = names.index(label)
    thr = np.asarray(thresholds, dtype=np.float64)
    others = np.array([i != k and n not in ignore_others for i, n in enumerate(names)])
    n_feat = masker.n_features
    feature_names = masker.space.feature_names
    calls = 0

    def predict(masks: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += len(masks)
        return np.asarray(predict_proba(masker(masks)), dtype=np.float64)

    full = np.ones((1, n_feat), dtype=np.float32)
    p0 = predict(full)[0]
    decided0 = p0 >= thr
    result = Counterfactual(label, "", "", float(p0[k]), float(p0[k]), float(thr[k]), n_features_total=n_feat)
    if not decided0[k]:
        result.status, result.reason, result.n_calls = "not predicted", "below threshold", calls
        return result

    def objective(p: np.ndarray) -> np.ndarray:
        flipped_others = ((p >= thr) != decided0) & others
        return p[:, k] + keep_others * flipped_others.sum(axis=1)

    def masks_without(sets: list[list[int]]) -> np.ndarray:
        m = np.ones((len(sets), n_feat), dtype=np.float32)
        for row, s in enumerate(sets):
            m[row, s] = 0.0
        return m

    # How far each feature lies from its normal version: a feature equal to it cannot matter, and
    # on a plateau (an OR of features, where no single one lowers P) it is the only guide.
    deviation = masker.space.sum_samples(np.abs(masker.x - masker.bg)[None])[0]
    movable = np.flatnonzero(deviation > 1e-6)
    if not len(movable):
        result.status, result.reason, result.n_calls = (
            "not flipped",
            "the record already equals its normal version",
            calls,
        )
        return result

    # 1. single-feature occlusion ranks the candidates (one batch), ties broken by deviation
    p_single = predict(masks_without([[int(j)] for j in movable]))
    order = np.lexsort((-deviation[movable], objective(p_single)))
    pool = [int(movable[j]) for j in order[:candidates]]

    # 2. best-first greedy
    chosen: list[int] = []
    p_now = p0
    reason = ""
    while True:
        if p_now[k] < thr[k]:
            break
        if len(chosen) >= max_features:
            reason = f"max_features {max_features} reached"
            break
        rest = [j for j in pool if j not in chosen]
        if not rest:
            reason = f"all {len(pool)} candidates used"
            break
        if calls + len(rest) > max_calls:
            reason = f"max_calls {max_calls} reached"
            break
        p_try = predict(masks_without([chosen + [j] for j in rest]))
        best = int(np.lexsort((-deviation[rest], objective(p_try)))[0])
        chosen.append(rest[best])
        p_now = p_try[best]

    # 3. pruning: drop any feature the flip does not need
    if p_now[k] < thr[k]:
        while len(chosen) > 1 and calls + len(chosen) <= max_calls:
            subsets = [[j for j in chosen if j != drop] for drop in chosen]
            p_try = predict(masks_without(subsets))
            still = (p_try[:, k] < thr[k]) & (objective(p_try) <= objective(p_now[None])[0])
            if not still.any():
                break
            best = int(np.argmin(np.where(still, p_try[:, k], np.inf)))
            chosen, p_now = subsets[best], p_try[best]

    result.p_after = float(p_now[k])
    result.features = [feature_names[j] for j in sorted(chosen)]
    result.others_changed = [names[i] for i in np.flatnonzero(((p_now >= thr) != decided0) & others)]
    result.n_calls = calls
    if p_now[k] < thr[k]:
        result.status, result.reason = "flipped", ""
    else:
        result.status, result.reason = "not flipped", reason
    return result
