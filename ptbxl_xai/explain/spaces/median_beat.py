"""The median beat: every lead's beats aligned on R and reduced to one representative cycle.

A clinician reads P, PR, QRS, ST and T on an average complex rather than on ten noisy beats (as
ECG machines print them, and as Bender et al. 2023 average relevance over the beat). Beats are
cut from a fixed window around each R peak (global across leads, from delineation); the median
over beats, sample by sample, keeps the waves' shape and ignores an ectopic beat or a spike. The
median fiducials (each relative to R) give the median beat its own P/PR/QRS/ST/T/TP partition, the
same `segment_labels` that cuts the whole record, so a wave feature's attribution can be drawn on
its segment of the median beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptbxl_xai.explain.spaces.features import FIDUCIALS, NotDelineated, _beat_array, segment_labels

# 0.4 s before R holds the P onset at PR intervals up to ~0.3 s; 0.6 s after R holds the T end at
# QT up to ~0.55 s. At rates above 100 bpm the neighbouring beats enter the window's edges.
BEFORE_S = 0.4
AFTER_S = 0.6


@dataclass(frozen=True, eq=False)
class MedianBeat:
    signal: np.ndarray  # [leads, W] median over beats, in the units of the input
    rate: int  # Hz
    r_index: int  # sample of R inside the window (= round(before_s * rate))
    n_beats: int  # beats whose whole window lay inside the record
    fiducials: dict  # name -> sample inside the window (median over beats), -1 where too few beats had it
    segment_of_sample: np.ndarray | None  # [W] segment index (features.SEGMENTS), None without a median QRS
    notes: tuple[str, ...] = ()

    @property
    def start_s(self) -> float:
        """Time of the window's first sample relative to R (negative), in seconds."""
        return -self.r_index / self.rate


def median_beat(x: np.ndarray, beats, rate: int, before_s: float = BEFORE_S, after_s: float = AFTER_S) -> MedianBeat:
    """R-aligned median beat of every lead of `x` [leads, T] from the record's `beats` table.

    A fiducial's median is taken over the beats where it was found, and kept when at least half of
    the used beats have it. Raises NotDelineated when no beat has an R whose window fits the record.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be [leads, T], got shape {x.shape}")
    T = x.shape[1]
    pre, post = int(round(before_s * rate)), int(round(after_s * rate))
    if pre < 1 or post < 1:
        raise ValueError("before_s and after_s must cover at least one sample each")
    b = _beat_array(beats)
    r = b[:, FIDUCIALS.index("r")]
    fits = (r - pre >= 0) & (r + post < T)
    if not fits.any():
        raise NotDelineated(
            f"no beat among {len(b)} has an R peak {before_s} s from the start and {after_s} s from the end"
        )
    used = b[fits]
    idx = used[:, FIDUCIALS.index("r")][:, None] + np.arange(-pre, post + 1)[None, :]  # [n, W]
    stacked = x[:, idx]  # [leads, n, W]
    signal = np.median(stacked, axis=1)
    W = pre + post + 1
    fid = {}
    for k, name in enumerate(FIDUCIALS):
        col = used[:, k]
        ok = (col >= 0) & (col < T)
        rel = col[ok] - used[ok, FIDUCIALS.index("r")] + pre
        rel = rel[(rel >= 0) & (rel < W)]
        fid[name] = int(np.round(np.median(rel))) if len(rel) * 2 >= len(used) else -1
    notes = []
    try:
        seg, seg_notes = segment_labels(np.array([[fid[name] for name in FIDUCIALS]]), W)
        notes += seg_notes
    except NotDelineated:
        seg = None
        notes.append("median beat has no QRS onset/offset found in at least half of its beats: no segments")
    if (~fits).any():
        notes.append(f"{int((~fits).sum())} beat(s) too close to the record's edges left out")
    return MedianBeat(signal, int(rate), pre, int(fits.sum()), fid, seg, tuple(notes))
