"""Feature spaces: how a 12-lead record is cut into the features that every explainer shares.

Two kinds, both a partition of the time axis shared by all leads (so a feature is lead x segment):

* ``waves``: the cardiac cycle, 12 leads x (P, PR, QRS, ST, T, TP). A feature is the union of that
  segment over every beat of the lead; its boundaries come from delineation and are global across
  leads (earliest onset, latest offset: the CSE convention), so one sample index belongs to the same
  segment in every lead. Samples outside any delineated wave (the T-P interval, the record's edges)
  are TP.
* ``bins``: ``n_bins`` equal windows per lead, the fallback where a record cannot be delineated.

SHAP, LIME, gradient SHAP, attention, faithfulness, the expert-rule checks, the figures and the
viewer all read one `FeatureSpace`, so they can be compared feature for feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ptbxl_xai.data.ptbxl import LEADS

SEGMENTS = ("P", "PR", "QRS", "ST", "T", "TP")
# Beat-table columns (sample indices in the preprocessed signal, -1 where not found), in cycle order.
FIDUCIALS = ("p_on", "p_off", "qrs_on", "r", "qrs_off", "t_on", "t_off")
FEATURE_KINDS = ("waves", "bins")
_P, _PR, _QRS, _ST, _T, _TP = range(len(SEGMENTS))
# Where delineation found the T end but not its onset, ST ends this far from QRS offset to T offset
# (ST ~100 ms of a ~300 ms ST-T at rest); flagged in `FeatureSpace.notes`.
ST_SHARE_WITHOUT_T_ONSET = 1 / 3


class NotDelineated(ValueError):
    """A record whose beats cannot form wave features; its explanations fall back to time bins."""


@dataclass(frozen=True, eq=False)
class FeatureSpace:
    """A partition of [0, T) into segments, shared by all leads; features are lead-major."""

    kind: str  # "waves" or "bins"
    segment_of_sample: np.ndarray  # [T] int: segment index of every sample
    segment_names: tuple[str, ...]
    lead_names: tuple[str, ...] = LEADS
    notes: tuple[str, ...] = field(default=())  # e.g. estimated boundaries, fallback reason

    def __post_init__(self):
        seg = np.asarray(self.segment_of_sample)
        if seg.ndim != 1 or len(seg) == 0:
            raise ValueError("segment_of_sample must be a non-empty 1-D array")
        if seg.min() < 0 or seg.max() >= len(self.segment_names):
            raise ValueError(f"segment indices must lie in [0, {len(self.segment_names)})")
        object.__setattr__(self, "segment_of_sample", seg.astype(np.intp, copy=False))

    @property
    def T(self) -> int:
        return len(self.segment_of_sample)

    @property
    def n_leads(self) -> int:
        return len(self.lead_names)

    @property
    def n_segments(self) -> int:
        """Features per lead."""
        return len(self.segment_names)

    @property
    def n_features(self) -> int:
        return self.n_leads * self.n_segments

    @property
    def feature_names(self) -> list[str]:
        return [f"{lead}:{seg}" for lead in self.lead_names for seg in self.segment_names]

    def feature_index(self, lead: int | str, segment: int | str) -> int:
        li = self.lead_names.index(lead) if isinstance(lead, str) else int(lead)
        si = self.segment_names.index(segment) if isinstance(segment, str) else int(segment)
        return li * self.n_segments + si

    @property
    def segment_samples(self) -> np.ndarray:
        """[n_segments] number of samples in each segment (0 for a segment the record lacks)."""
        return np.bincount(self.segment_of_sample, minlength=self.n_segments)

    @property
    def membership(self) -> np.ndarray:
        """[n_segments, T] one-hot: which samples make up each segment."""
        return (self.segment_of_sample[None, :] == np.arange(self.n_segments)[:, None]).astype(np.float32)

    def sample_masks(self, masks: np.ndarray) -> np.ndarray:
        """Feature masks [m, n_features] -> per-sample masks [m, n_leads, T] (a gather, no loop)."""
        masks = np.asarray(masks, dtype=np.float32)
        if masks.ndim == 1:
            masks = masks[None]
        if masks.shape[1] != self.n_features:
            raise ValueError(f"masks must have {self.n_features} columns, got {masks.shape[1]}")
        m = masks.reshape(len(masks), self.n_leads, self.n_segments)
        return m @ self._membership  # one-hot matmul: ~4x faster than indexing by segment_of_sample

    @property
    def _membership(self) -> np.ndarray:
        cached = self.__dict__.get("_membership_cache")
        if cached is None:
            cached = self.membership
            object.__setattr__(self, "_membership_cache", cached)
        return cached

    def sum_samples(self, values: np.ndarray) -> np.ndarray:
        """Per-sample values [..., n_leads, T] -> per-feature sums [..., n_features] (e.g. gradient SHAP)."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape[-2:] != (self.n_leads, self.T):
            raise ValueError(f"values must end in ({self.n_leads}, {self.T}), got {v.shape}")
        out = v @ self.membership.T.astype(np.float64)
        return out.reshape(*v.shape[:-2], self.n_features)

    def spread(self, feature_values: np.ndarray) -> np.ndarray:
        """Per-feature values [..., n_features] -> [..., n_leads, T], each sample showing its feature's value."""
        f = np.asarray(feature_values)
        f = f.reshape(*f.shape[:-1], self.n_leads, self.n_segments)
        return f[..., self.segment_of_sample]

    def time_share(self) -> np.ndarray:
        """[n_features] share of the record's lead x time that each feature covers (sums to 1)."""
        per_seg = self.segment_samples / self.T
        return np.tile(per_seg, self.n_leads) / self.n_leads


def bin_space(T: int, n_bins: int, lead_names: tuple[str, ...] = LEADS) -> FeatureSpace:
    """n_bins equal windows per lead (feature = lead * n_bins + bin, as `bin_means` lays them out)."""
    if n_bins <= 0 or T % n_bins:
        raise ValueError(f"{T} samples do not split into {n_bins} equal bins")
    seg = np.repeat(np.arange(n_bins), T // n_bins)
    names = tuple(f"bin{i:02d}" for i in range(n_bins))
    return FeatureSpace("bins", seg, names, tuple(lead_names))


def _beat_array(beats) -> np.ndarray:
    """Beats as an int64 array [n_beats, 7] in FIDUCIALS order, from a DataFrame or an array."""
    if hasattr(beats, "columns"):
        missing = [c for c in FIDUCIALS if c not in beats.columns]
        if missing:
            raise ValueError(f"beat table lacks columns {missing}")
        arr = beats[list(FIDUCIALS)].to_numpy()
    else:
        arr = np.asarray(beats)
    arr = np.asarray(arr, dtype=np.float64).reshape(-1, len(FIDUCIALS))
    arr = np.where(np.isfinite(arr), arr, -1)
    return arr.astype(np.int64)


def segment_labels(beats, T: int) -> tuple[np.ndarray, list[str]]:
    """[T] segment index per sample from a record's beats, plus notes on estimated boundaries.

    A beat counts when its QRS onset and offset are valid (0 <= on <= off < T). Its P wave, PR, ST
    and T are painted where their boundaries exist and keep the cycle's order; a P wave or T wave that
    contradicts the QRS (e.g. P offset after QRS onset) is dropped for that beat. QRS is painted last,
    so it wins any overlap between neighbouring beats. Raises NotDelineated when no beat counts.
    """
    b = _beat_array(beats)
    seg = np.full(T, _TP, dtype=np.int8)
    valid = (b >= 0) & (b < T)
    p_on, p_off, q_on, _r, q_off, t_on, t_off = (b[:, i] for i in range(len(FIDUCIALS)))
    v = {name: valid[:, i] for i, name in enumerate(FIDUCIALS)}
    has_qrs = v["qrs_on"] & v["qrs_off"] & (q_on <= q_off)
    if not has_qrs.any():
        raise NotDelineated(f"no beat with a valid QRS onset and offset among {len(b)} beats")
    estimated_st = 0
    for i in np.flatnonzero(has_qrs):
        if v["p_on"][i] and v["p_off"][i] and p_on[i] <= p_off[i] < q_on[i]:
            seg[p_on[i] : p_off[i] + 1] = _P
            seg[p_off[i] + 1 : q_on[i]] = _PR
        if v["t_off"][i] and t_off[i] > q_off[i]:
            if v["t_on"][i] and q_off[i] < t_on[i] <= t_off[i]:
                st_end = t_on[i]
            else:
                st_end = q_off[i] + 1 + int(round((t_off[i] - q_off[i]) * ST_SHARE_WITHOUT_T_ONSET))
                estimated_st += 1
            seg[q_off[i] + 1 : st_end] = _ST
            seg[st_end : t_off[i] + 1] = _T
    for i in np.flatnonzero(has_qrs):
        seg[q_on[i] : q_off[i] + 1] = _QRS
    notes = []
    if estimated_st:
        notes.append(f"ST/T boundary estimated in {estimated_st} beat(s) without a T onset")
    return seg, notes


def wave_space(beats, T: int, lead_names: tuple[str, ...] = LEADS) -> FeatureSpace:
    """12 leads x (P, PR, QRS, ST, T, TP) from a record's beats (see `segment_labels`)."""
    seg, notes = segment_labels(beats, T)
    return FeatureSpace("waves", seg, SEGMENTS, tuple(lead_names), tuple(notes))


def space_for_record(kind: str, T: int, n_bins: int, beats=None) -> FeatureSpace:
    """The feature space to explain one record in: waves where its beats allow, else time bins.

    A fallback is recorded in the returned space's `notes` (and its kind is "bins"), so every
    output can say which space an explanation lives in and why.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"explain.features must be one of {FEATURE_KINDS}, not {kind!r}")
    if kind == "bins":
        return bin_space(T, n_bins)
    reason = "no delineation for this record"
    if beats is not None and len(beats):
        try:
            return wave_space(beats, T)
        except NotDelineated as exc:
            reason = str(exc)
    space = bin_space(T, n_bins)
    return FeatureSpace(
        space.kind,
        space.segment_of_sample,
        space.segment_names,
        space.lead_names,
        (f"fell back to {n_bins} time bins per lead: {reason}",),
    )


def record_spaces(kind: str, T: int, n_bins: int, beats=None, compare: bool = True) -> list[FeatureSpace]:
    """The spaces to explain one record in: the configured one first (waves falls back to bins with a
    note), then, with `compare`, the other one where the record has it."""
    primary = space_for_record(kind, T, n_bins, beats)
    if not compare:
        return [primary]
    if primary.kind == "waves":
        return [primary, bin_space(T, n_bins)]
    other = space_for_record("waves", T, n_bins, beats)
    return [primary, other] if other.kind == "waves" else [primary]
