"""Attention over the T' recurrent steps -> attention over input time bins or any `FeatureSpace`.

Each step covers a known span of input samples, given as `step_edges`:
  * an array [T'+1] of contiguous edges (step i covers edges[i]:edges[i+1]), as
    `HybridECGNet.step_to_sample_edges(T)` returns, or
  * an array [T', 2] of [start, end) intervals (e.g. receptive fields, may overlap), or
  * a callable T -> either of the above.
A step's weight is spread uniformly over its samples (clipped to [0, T)), so a bin
gets the overlap-weighted sum of the steps' attention and the bins sum to 1 whenever
the steps' attention does.

On a `FeatureSpace` (wave segments, or bins) a segment's attention is the overlap-weighted
*mean* over the steps that cover it (`attention_to_space`): a segment's attention mass divided by
how many steps' worth of span cover it. Without that normalisation TP, which spans most of a
record, would win every ranking by its length alone; with it a segment ranks by how strongly the
model attends while it is in that segment. On equal bins both give the same ranking.

Attention has no lead axis: the lead axis is shared, i.e. `broadcast_leads` repeats the
same time profile on all 12 leads (each lead row sums to 1, not the whole map).
"""

from __future__ import annotations

import numpy as np

from ptbxl_xai.explain.spaces.features import FeatureSpace


def step_intervals(step_edges, T: int) -> np.ndarray:
    """Normalise `step_edges` to [T', 2] integer [start, end) intervals clipped to [0, T]."""
    e = step_edges(T) if callable(step_edges) else step_edges
    e = np.asarray(e, dtype=np.float64)
    if e.ndim == 1:
        if len(e) < 2 or np.any(np.diff(e) < 0):
            raise ValueError("1-D step_edges must be non-decreasing with at least 2 entries")
        e = np.stack([e[:-1], e[1:]], axis=1)
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"step_edges must be [T'+1] or [T', 2], got shape {e.shape}")
    e = np.clip(e, 0, T)
    if np.any(e[:, 1] <= e[:, 0]):
        raise ValueError("every step must cover at least one input sample inside [0, T)")
    return e


def step_bin_overlap(step_edges, T: int, n_bins: int) -> np.ndarray:
    """[T', n_bins] share of each step's span falling in each bin (rows sum to 1)."""
    iv = step_intervals(step_edges, T)
    bins = np.linspace(0, T, n_bins + 1)
    lo = np.maximum(iv[:, :1], bins[None, :-1])
    hi = np.minimum(iv[:, 1:], bins[None, 1:])
    overlap = np.clip(hi - lo, 0, None)
    return overlap / (iv[:, 1:] - iv[:, :1])


def attention_to_bins(attention: np.ndarray, step_edges, T: int, n_bins: int) -> np.ndarray:
    """attention [T'] or [n, T'] -> [n_bins] or [n, n_bins]."""
    a = np.asarray(attention, dtype=np.float64)
    W = step_bin_overlap(step_edges, T, n_bins)
    if a.shape[-1] != W.shape[0]:
        raise ValueError(f"attention has {a.shape[-1]} steps but step_edges describe {W.shape[0]}")
    return a @ W


def broadcast_leads(bin_attention: np.ndarray, n_leads: int = 12) -> np.ndarray:
    """[..., n_bins] -> [..., n_leads, n_bins]: the lead axis is shared (same profile per lead)."""
    b = np.asarray(bin_attention)
    return np.repeat(b[..., None, :], n_leads, axis=-2)


def step_segment_overlap(step_edges, space: FeatureSpace) -> np.ndarray:
    """[T', n_segments] share of each step's span lying in each segment of `space` (rows sum to 1).

    Samples are unit intervals [t, t+1); fractional step edges split a sample proportionally.
    """
    iv = step_intervals(step_edges, space.T)
    grid = np.arange(space.T + 1, dtype=np.float64)
    # cumulative sample count of every segment at each integer position, interpolated at the edges
    cum = np.vstack([np.zeros(space.n_segments), np.cumsum(space.membership.T, axis=0)])  # [T+1, S]
    at = lambda e: np.stack([np.interp(e, grid, cum[:, k]) for k in range(space.n_segments)], axis=1)  # noqa: E731
    overlap = at(iv[:, 1]) - at(iv[:, 0])
    return overlap / (iv[:, 1:] - iv[:, :1])


def attention_to_space(attention: np.ndarray, step_edges, space: FeatureSpace) -> np.ndarray:
    """attention [T'] or [n, T'] -> [n_segments] or [n, n_segments]: coverage-normalised mean per segment.

    value(segment) = sum_s a_s * share(s, segment) / sum_s share(s, segment), where share(s, segment)
    is the fraction of step s's span inside the segment; a segment the record lacks gets 0.
    """
    return pool_by_overlap(attention, step_segment_overlap(step_edges, space))


def pool_by_overlap(attention: np.ndarray, W: np.ndarray) -> np.ndarray:
    """`attention_to_space` with the overlap `W` (`step_segment_overlap`) computed beforehand, for
    callers that map many records of one length onto the same time bins."""
    a = np.asarray(attention, dtype=np.float64)
    if a.shape[-1] != W.shape[0]:
        raise ValueError(f"attention has {a.shape[-1]} steps but step_edges describe {W.shape[0]}")
    coverage = W.sum(0)  # steps' worth of span covering each segment
    mass = a @ W
    return np.divide(mass, coverage, out=np.zeros_like(mass), where=coverage > 0)


def attention_features(attention: np.ndarray, step_edges, space: FeatureSpace, as_density: bool = False) -> np.ndarray:
    """Attention [T'] -> [F]: each step's weight spread over its input samples, summed per segment.

    Mass (default): the attention on each segment, shared by all leads (divided by the number of
    leads), so the features sum to 1 and uniform attention gives exactly the time share; this is what
    a share of attribution is compared with. Density (`as_density`): mass per sample of the segment,
    so a ranking of features does not simply follow segment durations (used for rank correlations).
    """
    per_sample = attention_to_bins(np.asarray(attention, dtype=np.float64), step_edges, space.T, space.T)
    per_segment = np.bincount(space.segment_of_sample, weights=per_sample, minlength=space.n_segments)
    if as_density:
        n = space.segment_samples
        per_segment = np.where(n > 0, per_segment / np.maximum(n, 1), 0.0)
    return np.tile(per_segment, space.n_leads) / space.n_leads
