"""Wave and bin feature spaces: the partition every explainer, figure and check shares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ptbxl_xai.explain.spaces.features import (
    FIDUCIALS,
    SEGMENTS,
    NotDelineated,
    bin_space,
    segment_labels,
    space_for_record,
    wave_space,
)
from ptbxl_xai.explain.spaces.masking import Masker

T = 1000


def beats_table(n=8, period=110, start=40) -> pd.DataFrame:
    """Beats with every fiducial: P 40-55, PR to 70, QRS 70-80 (R 75), ST to 100, T 100-130."""
    rows = []
    for k in range(n):
        o = start + k * period
        rows.append(
            dict(
                ecg_id=1,
                beat=k,
                p_on=o,
                p_off=o + 15,
                qrs_on=o + 30,
                r=o + 35,
                qrs_off=o + 40,
                t_on=o + 60,
                t_off=o + 90,
            )
        )
    return pd.DataFrame(rows)


def test_segments_follow_the_fiducials_of_every_beat():
    beats = beats_table()
    seg, notes = segment_labels(beats, T)
    assert notes == []
    name = {i: s for i, s in enumerate(SEGMENTS)}
    for b in beats.itertuples():
        assert {name[v] for v in seg[b.p_on : b.p_off + 1]} == {"P"}
        assert {name[v] for v in seg[b.p_off + 1 : b.qrs_on]} == {"PR"}
        assert {name[v] for v in seg[b.qrs_on : b.qrs_off + 1]} == {"QRS"}
        assert {name[v] for v in seg[b.qrs_off + 1 : b.t_on]} == {"ST"}
        assert {name[v] for v in seg[b.t_on : b.t_off + 1]} == {"T"}
        assert name[seg[b.t_off + 1]] == "TP"
    assert name[seg[0]] == "TP" and name[seg[-1]] == "TP"  # record edges outside any beat


def test_masking_a_wave_feature_changes_exactly_that_segment_in_every_beat_of_that_lead():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, T)).astype(np.float32) + 5  # no sample equals the zero background
    beats = beats_table()
    space = wave_space(beats, T)
    masker = Masker(x, space, "zero")
    assert space.n_features == 72
    for lead, segment in ((0, "QRS"), (6, "ST"), (11, "P"), (3, "TP")):
        mask = np.ones(space.n_features, dtype=np.float32)
        mask[space.feature_index(lead, segment)] = 0
        out = masker(mask)[0]
        changed = out != x
        expected = np.zeros_like(changed)
        expected[lead, space.segment_of_sample == SEGMENTS.index(segment)] = True
        assert np.array_equal(changed, expected), (lead, segment)
        if segment == "QRS":  # every beat's QRS, and nothing else
            for b in beats.itertuples():
                assert changed[lead, b.qrs_on : b.qrs_off + 1].all()
            assert changed[lead].sum() == len(beats) * 11


def test_all_ones_keeps_the_record_and_all_zeros_gives_the_background():
    x = np.random.default_rng(1).standard_normal((12, T)).astype(np.float32)
    bg = np.full_like(x, 0.25)
    for space in (wave_space(beats_table(), T), bin_space(T, 20)):
        m = Masker(x, space, bg)
        np.testing.assert_allclose(m(np.ones(space.n_features))[0], x, atol=1e-6)
        assert np.array_equal(m(np.zeros(space.n_features))[0], bg)


def test_bin_space_matches_the_bin_layout_and_masker_fast_path():
    x = np.random.default_rng(2).standard_normal((12, T)).astype(np.float32)
    space = bin_space(T, 20)
    masks = (np.random.default_rng(3).random((7, 240)) > 0.5).astype(np.float32)
    general = np.zeros_like(x) + space.sample_masks(masks) * x  # the general path, zero background
    assert np.array_equal(Masker(x, 20, "zero")(masks), general)
    assert space.feature_index(2, 5) == 2 * 20 + 5


def test_sum_and_spread_are_consistent_with_the_partition():
    space = wave_space(beats_table(), T)
    v = np.random.default_rng(4).standard_normal((12, T))
    sums = space.sum_samples(v)
    for lead, seg in ((0, "P"), (5, "T"), (9, "TP")):
        sel = space.segment_of_sample == SEGMENTS.index(seg)
        assert sums[space.feature_index(lead, seg)] == pytest.approx(v[lead, sel].sum())
    assert sums.sum() == pytest.approx(v.sum())
    spread = space.spread(np.arange(72.0))
    assert spread.shape == (12, T) and spread[4, 75] == space.feature_index(4, "QRS")
    assert space.time_share().sum() == pytest.approx(1.0)


def test_missing_and_contradictory_fiducials():
    beats = beats_table(n=3)
    beats.loc[0, ["p_on", "p_off"]] = -1  # no P wave (e.g. AFIB): PR and P merge into TP
    beats.loc[1, "t_on"] = -1  # T onset missing: ST/T split estimated and noted
    beats.loc[2, "p_off"] = beats.loc[2, "qrs_on"] + 3  # P ending inside QRS: P dropped for that beat
    seg, notes = segment_labels(beats, T)
    b0, b1, b2 = beats.iloc[0], beats.iloc[1], beats.iloc[2]
    assert set(seg[b0.p_on if b0.p_on >= 0 else 40 : b0.qrs_on]) == {SEGMENTS.index("TP")}
    assert (
        SEGMENTS.index("ST") in seg[b1.qrs_off + 1 : b1.t_off]
        and SEGMENTS.index("T") in seg[b1.qrs_off + 1 : b1.t_off + 1]
    )
    assert any("estimated" in n for n in notes)
    assert SEGMENTS.index("P") not in seg[b2.p_on : b2.qrs_on]


def test_a_record_without_usable_beats_falls_back_to_bins_with_the_reason():
    empty = pd.DataFrame(columns=["ecg_id", "beat", *FIDUCIALS])
    space = space_for_record("waves", T, 20, empty)
    assert space.kind == "bins" and space.n_features == 240 and "fell back" in space.notes[0]
    broken = beats_table(n=2).assign(qrs_off=-1)
    with pytest.raises(NotDelineated):
        wave_space(broken, T)
    space = space_for_record("waves", T, 20, broken)
    assert space.kind == "bins" and "no beat with a valid QRS" in space.notes[0]
    assert space_for_record("waves", T, 20, beats_table()).kind == "waves"
    with pytest.raises(ValueError, match="explain.features"):
        space_for_record("beats", T, 20)


def test_wrong_mask_width_is_refused():
    x = np.zeros((12, T), dtype=np.float32)
    for space in (wave_space(beats_table(), T), bin_space(T, 20)):
        with pytest.raises(ValueError, match="columns"):
            Masker(x, space)(np.ones((2, space.n_features - 1)))
