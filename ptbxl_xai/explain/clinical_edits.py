"""Counterfactuals in the units a clinician measures: an ST shift in mV, a T or QRS amplitude scale, a QRS or
PR duration change in ms, per lead group.

Where `explain.counterfactual` answers "which segments, made normal, undo the call", this answers "how much
would the ST level (or T amplitude, QRS width, ...) have to change": the smallest edit of each kind on a
fixed grid of clinical steps whose result falls below the label's threshold.

Edits act on the conditioned record [leads, T] (model units) through the record's wave segmentation (global
boundaries, `FeatureSpace.segment_of_sample`) and its `lead_scale` (mV per model unit of each lead):

* ``st_shift``  adds `amount` mV to every ST segment of the group's leads;
* ``t_scale`` / ``qrs_scale``  scale every T wave / QRS complex of the group's leads by `amount` about the
  straight line joining the wave's first and last sample (so the edit leaves no step at its edges; a
  negative factor inverts the wave);
* ``qrs_duration``  widens (narrows) every QRS complex by `amount` ms, in all leads, taken from (given to)
  the ST segment that follows, so R peaks and the rhythm stay where they are;
* ``pr_duration``  lengthens every PR segment by `amount` ms, taken from the TP before the P wave (the P wave
  moves earlier, the QRS stays).

Every sample outside the edited segments is left exactly as it was. Segments cut by the record's edges are
not edited (their extent is unknown). The grid's resolution is the answer's resolution: "ST -0.10 mV in
V1-V4" means -0.05 did not flip the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ptbxl_xai.explain.spaces.features import SEGMENTS, FeatureSpace
from ptbxl_xai.explain.spaces.template import _resample, _runs

EDIT_KINDS = ("st_shift", "t_scale", "qrs_scale", "qrs_duration", "pr_duration")
UNITS = {"st_shift": "mV", "t_scale": "x", "qrs_scale": "x", "qrs_duration": "ms", "pr_duration": "ms"}
# Clinical steps, smallest change first within each sign. ST: 0.05 mV is the resolution of a 1 mm-per-0.1 mV
# paper trace read by eye, 0.1-0.2 mV the STEMI cut-offs (Thygesen 2018); durations in 10 ms, one sample at
# 100 Hz; scales from halving to inverting (T) or doubling.
DEFAULT_GRID = {
    "st_shift": (-0.5, -0.4, -0.3, -0.2, -0.15, -0.1, -0.05, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
    "t_scale": (-1.0, -0.5, 0.0, 0.5, 0.75, 1.5, 2.0),
    "qrs_scale": (0.5, 0.75, 1.25, 1.5, 2.0),
    "qrs_duration": (-60, -40, -30, -20, -10, 10, 20, 30, 40, 60),
    "pr_duration": (-80, -60, -40, -20, 20, 40, 60, 80),
}
DEFAULT_GROUPS = ("inferior", "lateral", "anterior", "all")  # lead groups of expert_rules.yaml
GLOBAL_KINDS = ("qrs_duration", "pr_duration")  # durations are global boundaries: all leads at once
_SEG = {name: i for i, name in enumerate(SEGMENTS)}
_AMPLITUDE_SEGMENT = {"st_shift": "ST", "t_scale": "T", "qrs_scale": "QRS"}


@dataclass(frozen=True)
class Edit:
    kind: str
    amount: float  # mV (st_shift), factor (scales), ms (durations)
    group: str = "all"
    leads: tuple[str, ...] = ()  # lead names; empty: every lead

    def __post_init__(self):
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"edit kind {self.kind!r} is not one of {EDIT_KINDS}")

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    @property
    def magnitude(self) -> float:
        """How big a change it is, in its unit: |mV|, |ms|, or |factor - 1|."""
        return abs(self.amount - 1.0) if self.unit == "x" else abs(self.amount)

    def describe(self) -> str:
        leads = ",".join(self.leads) if self.leads else "all leads"
        where = "" if self.kind in GLOBAL_KINDS else f" in {self.group} ({leads})"
        if self.kind == "st_shift":
            return f"ST {self.amount:+.2f} mV{where}"
        if self.unit == "x":
            wave = _AMPLITUDE_SEGMENT[self.kind]
            return f"{wave} x{self.amount:g}{where}"
        return f"{'QRS' if self.kind == 'qrs_duration' else 'PR'} {self.amount:+g} ms"


def _lead_index(leads: Sequence[str], lead_names: Sequence[str]) -> np.ndarray:
    upper = [n.upper() for n in lead_names]
    if not leads:
        return np.arange(len(lead_names))
    return np.array([upper.index(lead.upper()) for lead in leads])


def _inner_runs(seg: np.ndarray):
    """Runs (start, end, segment) with the ones cut by the record's edges marked."""
    starts, ends, segs = _runs(seg)
    inner = (starts > 0) & (ends < len(seg))
    return starts, ends, segs, inner


def apply_edit(
    x: np.ndarray, space: FeatureSpace, edit: Edit, lead_scale: np.ndarray, rate: int
) -> tuple[np.ndarray, int]:
    """(edited copy of x [leads, T], number of segments edited). 0 edited: the record lacks what the edit
    changes (no whole ST segment, no PR-TP pair, ...), and the copy equals x."""
    if space.kind != "waves":
        raise ValueError("clinical edits need the record's wave segmentation (a delineated record)")
    x = np.asarray(x, dtype=np.float32)
    out = x.copy()
    starts, ends, segs, inner = _inner_runs(space.segment_of_sample)
    if edit.kind in _AMPLITUDE_SEGMENT:
        rows = _lead_index(edit.leads, space.lead_names)
        target = _SEG[_AMPLITUDE_SEGMENT[edit.kind]]
        n = 0
        for a, b, s, ok in zip(starts, ends, segs, inner):
            if s != target or not ok:
                continue
            n += 1
            if edit.kind == "st_shift":
                out[rows, a:b] += np.float32(edit.amount) / np.asarray(lead_scale, np.float32)[rows, None]
            else:
                piece = x[rows, a:b]
                t = np.linspace(0.0, 1.0, b - a, dtype=np.float32)
                line = piece[:, :1] + (piece[:, -1:] - piece[:, :1]) * t
                out[rows, a:b] = line + np.float32(edit.amount) * (piece - line)
        return out, n
    return _duration_edit(x, starts, ends, segs, inner, edit, rate)


def _duration_edit(x, starts, ends, segs, inner, edit: Edit, rate: int) -> tuple[np.ndarray, int]:
    """Resample the target run to its new length and its compensating neighbour to the rest."""
    delta = int(round(edit.amount * rate / 1000.0))
    lengths = (ends - starts).astype(int)
    new = lengths.copy()
    n = 0
    for i in range(len(starts)):
        if edit.kind == "qrs_duration":
            target, partner = i, i + 1  # QRS and the ST after it
            fits = partner < len(starts) and segs[i] == _SEG["QRS"] and segs[partner] == _SEG["ST"]
        else:
            target, partner = i, i - 2  # PR, and the TP before its P wave
            fits = partner >= 0 and segs[i] == _SEG["PR"] and segs[i - 1] == _SEG["P"] and segs[partner] == _SEG["TP"]
        if not fits or not (inner[target] and inner[partner]) or new[target] != lengths[target]:
            continue
        if new[target] + delta < 1 or new[partner] - delta < 1:
            continue  # no room: the neighbour (or the segment) would vanish
        new[target] += delta
        new[partner] -= delta
        n += 1
    if n == 0 or delta == 0:
        return x.copy(), 0
    pieces = [
        x[:, a:b] if m == b - a else _resample(x[:, a:b], int(m)).astype(np.float32)
        for a, b, m in zip(starts, ends, new)
    ]
    return np.concatenate(pieces, axis=1), n


@dataclass
class EditCounterfactual:
    """The smallest edit of one kind that flips `label` (or why there is none)."""

    label: str
    kind: str
    valid: bool
    reason: str
    p_before: float
    p_after: float
    threshold: float
    edit: Edit | None = None
    others_changed: list[str] = field(default_factory=list)
    n_tried: int = 0

    def sentence(self) -> str:
        if self.reason == "not predicted":
            return f"P({self.label}) {self.p_before:.2f} is below its threshold {self.threshold:.2f}: nothing to undo"
        if self.edit is None:
            return f"P({self.label}) {self.p_before:.2f}: {self.reason}"
        return f"P({self.label}) {self.p_before:.2f} -> {self.p_after:.2f} if {self.edit.describe()}"

    def as_row(self) -> dict:
        e = self.edit
        return {
            "label": self.label,
            "kind": self.kind,
            "valid": self.valid,
            "reason": self.reason,
            "p_before": self.p_before,
            "p_after": self.p_after,
            "threshold": self.threshold,
            "edit": "" if e is None else e.describe(),
            "group": "" if e is None else e.group,
            "amount": np.nan if e is None else float(e.amount),
            "unit": UNITS[self.kind],
            "magnitude": np.nan if e is None else e.magnitude,
            "others_changed": ";".join(self.others_changed),
            "n_tried": self.n_tried,
            "sentence": self.sentence(),
        }


def candidate_edits(groups: dict[str, Sequence[str]], grid: dict | None = None, kinds=EDIT_KINDS) -> list[Edit]:
    """Every edit of the grid: amplitude kinds once per lead group, durations once."""
    grid = grid or DEFAULT_GRID
    out = []
    for kind in kinds:
        amounts = grid[kind]
        if kind in GLOBAL_KINDS:
            out += [Edit(kind, float(a)) for a in amounts]
        else:
            out += [Edit(kind, float(a), g, tuple(leads)) for g, leads in groups.items() for a in amounts]
    return out


def edit_counterfactuals(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    space: FeatureSpace,
    lead_scale: np.ndarray,
    rate: int,
    label_names: Sequence[str],
    thresholds: Sequence[float],
    label: str,
    edits: Sequence[Edit],
    p_record: np.ndarray | None = None,
    ignore_others: Sequence[str] = ("NORM",),
    batch: int = 256,
) -> list[EditCounterfactual]:
    """Per edit kind: the smallest edit of `edits` (by magnitude; then fewest other decisions changed, then
    lowest P) that takes P(label) below its threshold. An edit that changes another label's decision is
    used only where no edit of its kind keeps them all (its `others_changed` says which). p_record: the
    record's probabilities where known (saves a call)."""
    names = list(label_names)
    k = names.index(label)
    thr = np.asarray(thresholds, dtype=np.float64)
    others = np.array([i != k and n not in ignore_others for i, n in enumerate(names)])
    p0 = np.asarray(predict_proba(x[None]) if p_record is None else p_record, dtype=np.float64).reshape(-1)
    decided0 = p0 >= thr
    kinds = list(dict.fromkeys(e.kind for e in edits))
    if not decided0[k]:
        return [EditCounterfactual(label, kd, False, "not predicted", p0[k], p0[k], thr[k]) for kd in kinds]
    signals, used = [], []
    for e in edits:
        xe, n = apply_edit(x, space, e, lead_scale, rate)
        if n:
            signals.append(xe)
            used.append(e)
    probs = np.zeros((len(used), len(names)))
    for i in range(0, len(used), batch):
        probs[i : i + batch] = predict_proba(np.stack(signals[i : i + batch]))
    out = []
    for kd in kinds:
        idx = [i for i, e in enumerate(used) if e.kind == kd]
        if not idx:
            out.append(EditCounterfactual(label, kd, False, f"the record has no whole segment a {kd} edit changes",
                                          p0[k], p0[k], thr[k]))  # fmt: skip
            continue
        p = probs[idx]
        flipped_others = ((p >= thr) != decided0) & others
        flips = np.flatnonzero(p[:, k] < thr[k])
        if not len(flips):
            best = idx[int(np.argmin(p[:, k]))]
            out.append(EditCounterfactual(label, kd, False, f"no {kd} edit of the grid flips it (lowest P "
                                          f"{probs[best, k]:.2f})", p0[k], probs[best, k], thr[k], n_tried=len(idx)))  # fmt: skip
            continue
        order = np.lexsort((p[flips, k], flipped_others[flips].sum(1), [used[idx[j]].magnitude for j in flips]))
        clean = [j for j in flips[order] if not flipped_others[j].any()]
        j = clean[0] if clean else flips[order][0]
        e = used[idx[j]]
        out.append(
            EditCounterfactual(
                label,
                kd,
                True,
                "",
                p0[k],
                float(p[j, k]),
                thr[k],
                e,
                [names[i] for i in np.flatnonzero(flipped_others[j])],
                len(idx),
            )
        )
    return out
