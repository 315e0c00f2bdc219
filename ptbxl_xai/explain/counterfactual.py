"""Counterfactuals: the fewest features that, made normal, turn a positive call negative.

"What would make this ECG normal?" is answered in the record's own feature space (wave
segments per lead, or time bins): a feature made normal is replaced by the `Masker`'s
background (for "normal_template" the NORM template's segment, stretched to the record's), so
every answer reads "P(MI) 0.81 -> 0.22 if the ST segments of V1, V2 and V3 were normal".

Search (deterministic, a bounded number of model calls):
1. one batch occluding every single feature ranks them by how far each alone lowers P(target),
   ties (a plateau, e.g. two leads either of which keeps the call) by how far the feature lies
   from its normal version; features equal to it are never candidates;
2. forward: best-first greedy over the top `candidates`: each step tries every remaining candidate
   added to the current set in one batch and keeps the one with the lowest objective,
   P(target) + `keep_others` x (other labels whose decision flipped), until P(target) falls
   below the label's threshold;
3. backward, where the forward pass ends without a flip (evidence spread over more features than it
   can reach): start from every feature made normal and, in rounds, put back the originals in the order
   of least harm (one batch ranks them, one batch of prefixes finds the longest that keeps the flip),
   until none can return. It finds an answer whenever the fully normal record flips the call;
4. pruning: while some single feature can leave the set and it still flips, drop the one whose
   removal keeps P(target) lowest, so the answer is minimal in the sense that no feature of
   it is superfluous (not a global minimum, which is combinatorial).
An answer with more than `max_features` features, or a search past `max_calls`, is "not flipped" with
the reason.
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
    search: str = ""  # "forward" or "backward": which pass found the answer

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
            "search": self.search,
            "sentence": self.sentence(),
        }


def feature_counterfactual(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    masker: Masker,
    label_names: Sequence[str],
    thresholds: Sequence[float],
    label: str,
    candidates: int = 16,
    max_features: int = 24,
    max_calls: int = 1200,
    keep_others: float = 1.0,
    ignore_others: Sequence[str] = ("NORM",),
    backward: bool = True,
    beam: int = 1,
) -> Counterfactual:
    """Search the smallest set of features whose normal version drops P(label) below its threshold.

    `predict_proba` maps signals [m, leads, T] to probabilities [m, labels]; `thresholds` are
    the run's per-label decision thresholds. Labels in `ignore_others` (the normal class, which
    is meant to change) do not count as "other decisions changed". `backward`: the backward pass where
    the forward one ends without a flip; `beam`: sets kept per size in the forward pass (1: greedy;
    3 changed neither median on the partial real PTB-XL, docs: Benchmarks).
    """
    names = list(label_names)
    if label not in names:
        raise ValueError(f"label {label!r} is not one of the model's labels {names}")
    if len(thresholds) != len(names):
        raise ValueError(f"{len(thresholds)} thresholds for {len(names)} labels")
    if candidates < 1 or max_features < 1 or max_calls < 2 or beam < 1:
        raise ValueError("candidates, max_features and beam must be >= 1, max_calls >= 2")
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
    order_of = [int(movable[j]) for j in order]  # every movable feature, most promising first
    pool = order_of[:candidates]

    def others_changed(p: np.ndarray) -> np.ndarray:
        return objective(p) - p[:, k]

    def forward(pool: list[int], budget: int) -> tuple[list[int], np.ndarray, str]:
        """Best-first search over `pool` from nothing changed, keeping the `beam` best sets of each size (1:
        greedy): (the first set that flips, or the best of the last size; its probabilities; why it stopped)."""
        sets: list[list[int]] = [[]]
        probs = p0[None]
        while not (probs[:, k] < thr[k]).any():
            if len(sets[0]) >= budget:
                return sets[0], probs[0], f"max_features {max_features} reached"
            grown = list({tuple(sorted(c + [j])): c + [j] for c in sets for j in pool if j not in c}.values())
            if not grown:
                return sets[0], probs[0], f"all {len(pool)} candidates used"
            if calls + len(grown) > max_calls:
                return sets[0], probs[0], f"max_calls {max_calls} reached"
            p_try = predict(masks_without(grown))
            best = np.lexsort((-np.array([deviation[c].sum() for c in grown]), objective(p_try)))[:beam]
            sets, probs = [grown[i] for i in best], p_try[best]
        flips = np.flatnonzero(probs[:, k] < thr[k])
        first = int(flips[np.argmin(objective(probs[flips]))])
        return sets[first], probs[first], ""

    def prune(chosen: list[int], p_now: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Drop features the flip does not need (lowest P first), never changing more other decisions."""
        while len(chosen) > 1 and calls + len(chosen) <= max_calls:
            subsets = [[j for j in chosen if j != drop] for drop in chosen]
            p_try = predict(masks_without(subsets))
            still = (p_try[:, k] < thr[k]) & (others_changed(p_try) <= others_changed(p_now[None])[0] + 1e-9)
            if not still.any():
                break
            best = int(np.argmin(np.where(still, p_try[:, k], np.inf)))
            chosen, p_now = subsets[best], p_try[best]
        return chosen, p_now

    # 2. forward: best-first greedy over the top candidates
    chosen, p_now, reason = forward(pool, max_features)
    result.search = "forward"

    # 3. backward: from every movable feature normal, put originals back while the flip holds; then a forward
    # pass inside that set, which is often smaller (the greedy sees the features' joint effect there)
    if p_now[k] >= thr[k] and backward and calls < max_calls:
        found = _backward(predict, masks_without, others_changed, [int(j) for j in movable], k, thr[k], max_calls,
                          lambda: calls)  # fmt: skip
        if found is None:
            reason += "; even with every segment normal the call stays"
        elif found[0] is not None:
            chosen, p_now = prune(*found)
            result.search = "backward"
            rank = {j: i for i, j in enumerate(order_of)}
            inner, p_inner, _ = forward(sorted(chosen, key=rank.__getitem__), len(chosen) - 1)
            if p_inner[k] < thr[k] and others_changed(p_inner[None])[0] <= others_changed(p_now[None])[0] + 1e-9:
                chosen, p_now = inner, p_inner
        else:
            reason += f"; backward: {found[1]}"

    # 4. pruning: drop any feature the flip does not need
    if p_now[k] < thr[k]:
        chosen, p_now = prune(chosen, p_now)

    if p_now[k] < thr[k] and len(chosen) > max_features:
        reason = f"the smallest set found has {len(chosen)} features, above max_features {max_features}"
        p_final_flipped = False
    else:
        p_final_flipped = p_now[k] < thr[k]
    result.p_after = float(p_now[k])
    result.features = [feature_names[j] for j in sorted(chosen)]
    result.others_changed = [names[i] for i in np.flatnonzero(((p_now >= thr) != decided0) & others)]
    result.n_calls = calls
    if p_final_flipped:
        result.status, result.reason = "flipped", ""
    else:
        result.status, result.reason = "not flipped", reason.strip("; ")
    return result


def made_normal(masker: Masker, features: Sequence[str]) -> np.ndarray:
    """The masker's record [leads, T] with the named features (e.g. 'V2:ST') replaced by their normal version."""
    names = masker.space.feature_names
    mask = np.ones((1, masker.n_features), np.float32)
    mask[0, [names.index(f) for f in features]] = 0.0
    return masker(mask)[0]


SEARCH_KEYS = ("candidates", "max_features", "max_calls", "beam")


def search_options(settings: dict | None) -> dict:
    """{search: caps for `feature_counterfactual`, edits: the clinical `Edit`s} from the config's `counterfactuals`
    section (None: the functions' defaults), so the rule, the viewer's answers and the app search alike."""
    from ptbxl_xai.explain.checks.rules import lead_groups
    from ptbxl_xai.explain.clinical_edits import DEFAULT_GROUPS, EDIT_KINDS, candidate_edits

    settings = settings or {}
    kinds = tuple(settings.get("edits", EDIT_KINDS))
    groups = lead_groups(settings.get("lead_groups", DEFAULT_GROUPS))
    return {
        "search": {k: settings[k] for k in SEARCH_KEYS if k in settings},
        "edits": candidate_edits(groups, kinds=kinds) if kinds else [],
    }


def _backward(
    predict, masks_without, others_changed, movable: list[int], k: int, threshold: float, max_calls: int, used
):
    """Backward elimination from every feature of `movable` made normal: None where that does not flip the
    call; otherwise (set, probabilities) of a set from which no original can return (one at a time, in
    order of least harm), or (None, reason) where `max_calls` ran out first."""
    if used() + 1 > max_calls:
        return None, f"max_calls {max_calls} reached"
    changed = list(movable)
    p_now = predict(masks_without([changed]))[0]
    if p_now[k] >= threshold:
        return None
    while len(changed) > 1:
        if used() + 2 * len(changed) > max_calls:
            break  # the set so far flips the call: a valid (if not minimal) answer
        p_one = predict(masks_without([[j for j in changed if j != back] for back in changed]))
        harm = p_one[:, k] + others_changed(p_one)  # P(target) up, and other decisions changed, per original back
        order = [changed[i] for i in np.argsort(harm, kind="stable")]
        prefixes = [[j for j in changed if j not in set(order[:m])] for m in range(1, len(order))]
        p_pre = predict(masks_without(prefixes))
        # the longest prefix of returned originals that still flips, with no more other decisions changed
        others_now, others_pre = others_changed(p_now[None])[0], others_changed(p_pre)
        keeps = np.flatnonzero((p_pre[:, k] < threshold) & (others_pre <= others_now + 1e-9))
        if not len(keeps):
            break
        m = int(max(keeps))
        changed, p_now = prefixes[m], p_pre[m]
    return changed, p_now
