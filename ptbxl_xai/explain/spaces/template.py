"""The `normal_template` background: what a normal ECG would show in each masked segment.

With a zero background a flat ST-T is itself abnormal, so masking the ST-T of an STTC record can raise
P(STTC) and the change gets negative SHAP. Replacing a masked segment by the same segment of a normal
beat instead makes an explanation answer the clinician's question: compared with a normal ECG, what
drives this label.

The template is built once per run from NORM training records (folds 1-8) and their delineated beats:
for every lead and segment (P, PR, QRS, ST, T, TP) each occurrence is resampled to `N_POINTS` points and
the pointwise median over all occurrences is kept, with the median duration of each segment. A record's
background is then, lead by lead, each of its segments filled with the template's segment stretched (or
squeezed) to that segment's duration in the record. A record explained on time bins (no delineation)
gets a normal rhythm instead: the template's median cycle repeated over the record.
The template is in the model's input units (the records are z-scored per lead), so it can be fed to the
model as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptbxl_xai.explain.spaces.features import SEGMENTS, FeatureSpace, NotDelineated, segment_labels

N_POINTS = 32  # samples per resampled segment: more than the longest segment at 100 Hz (TP ~60)
_TP = SEGMENTS.index("TP")


@dataclass(frozen=True, eq=False)
class NormalTemplate:
    shapes: np.ndarray  # [leads, n_segments, N_POINTS] median shape of each segment per lead
    durations: np.ndarray  # [n_segments] median duration of each segment, samples
    n_records: int  # NORM training records used
    n_occurrences: np.ndarray  # [n_segments] segment occurrences behind each median
    rate: int

    def save(self, path) -> Path:
        """Write to `path` (.npz) through a temporary name, so a reader never sees half a file."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            shapes=self.shapes,
            durations=self.durations,
            n_records=self.n_records,
            n_occurrences=self.n_occurrences,
            rate=self.rate,
            segments=np.array(SEGMENTS),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> "NormalTemplate":
        with np.load(path) as z:
            if tuple(z["segments"]) != SEGMENTS:
                raise ValueError(f"{path}: template segments {tuple(z['segments'])} are not {SEGMENTS}")
            return cls(z["shapes"], z["durations"], int(z["n_records"]), z["n_occurrences"], int(z["rate"]))

    def cycle_segments(self, T: int) -> np.ndarray:
        """[T] segment index of a normal rhythm at the template's median durations, starting with a P wave."""
        d = np.maximum(np.round(self.durations).astype(int), 1)
        cycle = np.repeat(np.arange(len(SEGMENTS)), d)
        return np.resize(cycle, T)


def _runs(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, segment) of every maximal run of one segment in `seg` [T]."""
    change = np.flatnonzero(np.diff(seg)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(seg)]])
    return starts, ends, seg[starts]


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """x [leads, m] -> [leads, n] by linear interpolation at sample centres."""
    m = x.shape[-1]
    src = (np.arange(m) + 0.5) / m
    dst = (np.arange(n) + 0.5) / n
    return np.stack([np.interp(dst, src, row) for row in x])


def build_normal_template(records, beats_per_record, rate: int) -> NormalTemplate:
    """Median segment shapes over NORM training records x [n, leads, T] and their beat tables.

    Only whole segments count: a run touching the record's first or last sample is cut by the record
    edge, so it is left out. Records whose beats cannot be delineated are skipped. Raises
    NotDelineated when no record has a usable beat.
    """
    X = np.asarray(records, dtype=np.float32)
    if X.ndim != 3 or len(X) != len(beats_per_record):
        raise ValueError("records must be [n, leads, T] with one beat table per record")
    leads, T = X.shape[1:]
    pieces: list[list[np.ndarray]] = [[] for _ in SEGMENTS]
    lengths: list[list[int]] = [[] for _ in SEGMENTS]
    used = 0
    for x, beats in zip(X, beats_per_record):
        if beats is None or len(beats) == 0:
            continue
        try:
            seg, _ = segment_labels(beats, T)
        except NotDelineated:
            continue
        used += 1
        for a, b, s in zip(*_runs(seg)):
            if a == 0 or b == T:
                continue
            pieces[s].append(_resample(x[:, a:b], N_POINTS))
            lengths[s].append(b - a)
    if not used or not pieces[SEGMENTS.index("QRS")]:
        raise NotDelineated(f"none of {len(X)} records has a delineated beat to build a normal template from")
    shapes = np.zeros((leads, len(SEGMENTS), N_POINTS), dtype=np.float32)
    durations = np.zeros(len(SEGMENTS))
    for s in range(len(SEGMENTS)):
        if pieces[s]:
            shapes[:, s] = np.median(np.stack(pieces[s]), axis=0)
            durations[s] = float(np.median(lengths[s]))
    return NormalTemplate(shapes, durations, used, np.array([len(p) for p in pieces]), int(rate))


def normal_template_background(x_record: np.ndarray, space: FeatureSpace, template: NormalTemplate) -> np.ndarray:
    """The all-masked record [leads, T]: every segment replaced by the template's, stretched to its duration.

    On a wave space each run of a segment (one beat's P wave, PR, ...) gets the template's segment
    resampled to the run's length. A run cut by the record's edge shows the matching part of a
    template segment of median duration, not a squeezed whole one. On a bin space the record's own
    segments are unknown, so the background is the template's normal cycle repeated over the record.
    """
    x = np.asarray(x_record, dtype=np.float32)
    leads, T = x.shape
    if template.shapes.shape[0] != leads:
        raise ValueError(f"template has {template.shapes.shape[0]} leads, record has {leads}")
    seg = space.segment_of_sample if space.kind == "waves" else template.cycle_segments(T)
    starts, ends, segs = _runs(np.asarray(seg))
    # phase in [0, 1) of every sample inside its (possibly virtual, for cut runs) segment
    lo, hi = starts.astype(np.float64), ends.astype(np.float64)
    med = np.maximum(template.durations[segs], 1.0)
    first_cut = (starts == 0) & (hi - lo < med)
    last_cut = (ends == T) & (hi - lo < med)
    lo = np.where(first_cut & ~last_cut, hi - med, lo)
    hi = np.where(last_cut & ~first_cut, lo + med, hi)
    run_of = np.repeat(np.arange(len(starts)), ends - starts)
    t = np.arange(T) + 0.5
    phase = (t - lo[run_of]) / (hi[run_of] - lo[run_of])
    pos = np.clip(phase * N_POINTS - 0.5, 0, N_POINTS - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, N_POINTS - 1)
    w = (pos - i0).astype(np.float32)
    s = segs[run_of]
    shp = template.shapes
    return np.ascontiguousarray(shp[:, s, i0] * (1 - w) + shp[:, s, i1] * w, dtype=np.float32)
