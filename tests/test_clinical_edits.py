"""Counterfactuals in clinical units, and their scores: edits change what they say and nothing else; toy models
whose answer is known by construction; the randomised control's matched thresholds; plausibility."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.explain.checks.counterfactuals import (
    matched_thresholds,
    plausibility,
    record_counterfactuals,
    summarize,
)
from ptbxl_xai.explain.checks.rules import lead_groups, load_rules
from ptbxl_xai.explain.clinical_edits import DEFAULT_GRID, Edit, apply_edit, candidate_edits, edit_counterfactuals
from ptbxl_xai.explain.spaces.features import SEGMENTS, FeatureSpace
from ptbxl_xai.explain.spaces.masking import Masker

RATE, T = 100, 1000
CYCLE = (("TP", 20), ("P", 8), ("PR", 6), ("QRS", 8), ("ST", 10), ("T", 16))  # 680 ms, 88 bpm
LABELS = ("NORM", "MI", "STTC")
THRESHOLDS = np.array([0.5, 0.5, 0.5])


def space(cycle=CYCLE, t=T) -> FeatureSpace:
    seg = np.concatenate([np.full(n, SEGMENTS.index(s)) for s, n in cycle] * (t // sum(n for _, n in cycle) + 1))
    return FeatureSpace("waves", seg[:t], SEGMENTS)


def runs_of(sp: FeatureSpace, name: str) -> list[tuple[int, int]]:
    seg = sp.segment_of_sample
    edges = np.flatnonzero(np.diff(seg)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, len(seg)]
    return [(a, b) for a, b in zip(starts, ends) if seg[a] == SEGMENTS.index(name) and a > 0 and b < len(seg)]


def st_level_mv(x, sp, leads, scale):
    """Mean ST sample of the given leads, in mV."""
    rows = [LEADS.index(lead) for lead in leads]
    st_mask = sp.segment_of_sample == SEGMENTS.index("ST")
    return (x[:, rows][..., st_mask] * scale[rows, None]).mean(axis=(1, 2))


SCALE = np.linspace(0.2, 0.8, 12).astype(np.float32)  # mV per model unit, different in every lead


def noisy(seed=0):
    return np.random.default_rng(seed).normal(size=(12, T)).astype(np.float32)


def test_st_shift_moves_the_st_segments_of_its_leads_by_the_stated_mv_and_nothing_else():
    sp, x = space(), noisy()
    edit = Edit("st_shift", -0.15, "anterior", ("V1", "V2", "V3", "V4"))
    y, n = apply_edit(x, sp, edit, SCALE, RATE)
    st_runs = runs_of(sp, "ST")
    assert n == len(st_runs) > 10
    rows = [LEADS.index(lead) for lead in edit.leads]
    changed = np.zeros_like(x, dtype=bool)
    for a, b in st_runs:
        changed[rows, a:b] = True
    np.testing.assert_allclose(((y - x) * SCALE[:, None])[changed], -0.15, atol=1e-6)
    np.testing.assert_array_equal(y[~changed], x[~changed])
    assert edit.describe() == "ST -0.15 mV in anterior (V1,V2,V3,V4)" and edit.magnitude == 0.15


@pytest.mark.parametrize("kind,wave", [("t_scale", "T"), ("qrs_scale", "QRS")])
def test_a_wave_scale_scales_about_the_line_between_its_ends_and_touches_no_other_sample(kind, wave):
    sp, x = space(), noisy(1)
    y, n = apply_edit(x, sp, Edit(kind, -1.0, "lateral", ("I", "AVL", "V5", "V6")), SCALE, RATE)
    rows = [LEADS.index(lead) for lead in ("I", "AVL", "V5", "V6")]
    changed = np.zeros_like(x, dtype=bool)
    for a, b in runs_of(sp, wave):
        line = x[rows, a : a + 1] + (x[rows, b - 1 : b] - x[rows, a : a + 1]) * np.linspace(0, 1, b - a)
        np.testing.assert_allclose(y[rows, a:b], 2 * line - x[rows, a:b], atol=1e-5)  # inverted about the line
        changed[rows, a:b] = True
    assert n == len(runs_of(sp, wave))
    np.testing.assert_array_equal(y[~changed], x[~changed])
    identity, _ = apply_edit(x, sp, Edit(kind, 1.0, "all"), SCALE, RATE)
    np.testing.assert_allclose(identity, x, atol=1e-6)


def stretched(piece, n):
    """piece [leads, m] linearly interpolated to n samples at sample centres (what a duration edit does)."""
    m = piece.shape[-1]
    return np.stack([np.interp((np.arange(n) + 0.5) / n, (np.arange(m) + 0.5) / m, row) for row in piece])


@given(ms=st.sampled_from(DEFAULT_GRID["qrs_duration"]), seed=st.integers(0, 3))
@settings(max_examples=12, deadline=None)
def test_a_qrs_duration_change_widens_every_qrs_by_the_stated_ms_from_its_st_and_keeps_the_rest(ms, seed):
    sp, x = space(), noisy(seed)
    y, n = apply_edit(x, sp, Edit("qrs_duration", ms), SCALE, RATE)
    delta = ms * RATE // 1000
    qrs, sts = runs_of(sp, "QRS"), runs_of(sp, "ST")
    edited = [(a, b, d) for (a, b), (c, d) in zip(qrs, sts) if b == c and b - a + delta >= 1 and d - b - delta >= 1]
    assert y.shape == x.shape and n == len(edited) > 10
    kept = np.ones(T, dtype=bool)
    for a, b, d in edited:
        kept[a:d] = False
        np.testing.assert_allclose(y[:, a : b + delta], stretched(x[:, a:b], b - a + delta), atol=1e-5)
        np.testing.assert_allclose(y[:, b + delta : d], stretched(x[:, b:d], d - b - delta), atol=1e-5)
    np.testing.assert_array_equal(y[:, kept], x[:, kept])  # P, PR, T, TP and the R-to-R rhythm untouched


def test_a_pr_change_takes_its_time_from_the_tp_before_the_p_wave_which_keeps_its_shape():
    sp, x = space(), noisy(2)
    y, n = apply_edit(x, sp, Edit("pr_duration", 40), SCALE, RATE)  # 4 samples at 100 Hz
    pairs = [(p, r) for p, r in zip(runs_of(sp, "P"), runs_of(sp, "PR")) if p[1] == r[0] and p[0] > 20]
    assert n == len(pairs) > 10
    for (pa, pb), (ra, rb) in pairs:
        np.testing.assert_array_equal(y[:, pa - 4 : pb - 4], x[:, pa:pb])  # the P wave, 40 ms earlier, unchanged
        np.testing.assert_allclose(y[:, pb - 4 : rb], stretched(x[:, ra:rb], rb - ra + 4), atol=1e-5)
    for a, b in runs_of(sp, "QRS") + runs_of(sp, "ST") + runs_of(sp, "T"):
        np.testing.assert_array_equal(y[:, a:b], x[:, a:b])  # QRS, ST and T stay where they were


def test_an_edit_the_record_has_no_room_for_is_refused_not_faked():
    sp, x = space(), noisy()
    y, n = apply_edit(x, sp, Edit("qrs_duration", -90), SCALE, RATE)  # QRS is 80 ms: it would vanish
    assert n == 0
    np.testing.assert_array_equal(y, x)
    with pytest.raises(ValueError, match="wave segmentation"):
        apply_edit(x, FeatureSpace("bins", np.repeat(np.arange(20), 50), tuple(map(str, range(20)))),
                   Edit("st_shift", 0.1), SCALE, RATE)  # fmt: skip


def anterior_st_toy(sp, scale):
    """MI reads the ST level in V1-V3 (called above 0.1 mV), STTC reads the ST level in lead II."""

    def predict(x):
        x = np.asarray(x)
        mi = 1 / (1 + np.exp(-80 * (st_level_mv(x, sp, ("V1", "V2", "V3"), scale) - 0.1)))
        sttc = 1 / (1 + np.exp(-80 * (st_level_mv(x, sp, ("II",), scale) - 0.1)))
        return np.stack([1 - np.maximum(mi, sttc), mi, sttc], axis=1)

    return predict


def elevated(sp, mv=0.2, leads=("V1", "V2", "V3", "II")):
    x = np.zeros((12, T), dtype=np.float32)
    st_mask = sp.segment_of_sample == SEGMENTS.index("ST")
    for lead in leads:
        x[LEADS.index(lead), st_mask] = mv / SCALE[LEADS.index(lead)]
    return x


def test_the_smallest_st_edit_that_flips_is_found_in_the_leads_the_model_reads_keeping_the_other_call():
    sp = space()
    x = elevated(sp)  # ST +0.2 mV in V1-V3 and II: MI and STTC both called
    predict = anterior_st_toy(sp, SCALE)
    edits = candidate_edits(lead_groups(["inferior", "anterior", "all"]), kinds=("st_shift", "pr_duration"))
    found = {e.kind: e for e in edit_counterfactuals(predict, x, sp, SCALE, RATE, LABELS, THRESHOLDS, "MI", edits)}
    st_cf = found["st_shift"]
    # -0.10 mV leaves exactly 0.1 mV (P = 0.5, not below); -0.15 is the grid's next step. "all" would also
    # flip STTC (lead II): the anterior group keeps that decision
    assert st_cf.valid and st_cf.edit.amount == -0.15 and st_cf.edit.group == "anterior"
    assert st_cf.others_changed == [] and st_cf.p_after < 0.5 < st_cf.p_before
    assert st_cf.sentence().endswith("if ST -0.15 mV in anterior (V1,V2,V3,V4)")
    assert not found["pr_duration"].valid and "no pr_duration edit of the grid flips it" in found["pr_duration"].reason
    # where only edits that change another call flip it, the answer says which
    only_all = [e for e in edits if e.group == "all" and e.kind == "st_shift"]
    (forced,) = edit_counterfactuals(predict, x, sp, SCALE, RATE, LABELS, THRESHOLDS, "MI", only_all)
    assert forced.valid and forced.others_changed == ["STTC"]


def test_a_label_not_called_gets_no_counterfactual():
    sp = space()
    x = elevated(sp, mv=0.0)
    out = edit_counterfactuals(anterior_st_toy(sp, SCALE), x, sp, SCALE, RATE, LABELS, THRESHOLDS, "MI",
                               candidate_edits(lead_groups(["all"])))  # fmt: skip
    assert {o.kind for o in out} == {"st_shift", "t_scale", "qrs_scale", "qrs_duration", "pr_duration"}
    assert all(not o.valid and o.reason == "not predicted" for o in out)


def test_the_segment_counterfactual_of_a_model_that_reads_one_leads_st_makes_exactly_that_segment_normal():
    sp = space()
    x = elevated(sp, leads=("V2",)) + 0.3 * noisy(3)  # every feature deviates from the zero background

    def predict(z):
        mi = 1 / (1 + np.exp(-80 * (st_level_mv(np.asarray(z), sp, ("V2",), SCALE) - 0.1)))
        return np.stack([1 - mi, mi, np.zeros_like(mi)], axis=1)

    seg_row, st_row = record_counterfactuals(
        predict, x, sp, Masker(x, sp, "zero"), SCALE, np.zeros(12), RATE, LABELS, THRESHOLDS, "MI",
        candidate_edits(lead_groups(["anterior"]), kinds=("st_shift",)), load_rules()["MI"], None, {},
    )  # fmt: skip
    assert seg_row["kind"] == "segments" and seg_row["valid"]
    assert seg_row["changed"] == "V2:ST" and seg_row["n_changed"] == 1
    assert seg_row["rule_share"] == 1.0  # MI's rule region holds ST in V2
    assert st_row["kind"] == "st_shift" and st_row["valid"] and st_row["amount"] < 0
    assert st_row["delta_mv_max"] == pytest.approx(abs(st_row["amount"]), rel=1e-4)  # only the ST moved, by that


def test_matched_thresholds_call_as_many_records_positive_as_the_trained_model():
    rng = np.random.default_rng(0)
    p_trained, p_random = rng.uniform(size=(200, 3)), rng.uniform(0.4, 0.41, size=(200, 3))
    thr = np.array([0.5, 0.9, 1.01])
    m = matched_thresholds(p_trained, thr, p_random)
    np.testing.assert_array_equal((p_random >= m).sum(0), (p_trained >= thr).sum(0))
    assert (p_random[:, 2] >= m[2]).sum() == 0  # nobody called: a threshold above every probability


def test_the_randomised_control_must_lower_p_by_the_trained_models_margin_on_the_same_record():
    from ptbxl_xai.explain.checks.counterfactuals import paired_drop_thresholds

    p_trained = np.array([[0.9, 0.7], [0.6, 0.2]])
    p_random = np.array([[0.52, 0.50], [0.51, 0.49]])
    matched = np.array([0.51, 0.495])
    for_task = paired_drop_thresholds(p_trained, [0.5, 0.5], p_random, matched)
    np.testing.assert_allclose(for_task(0, 0), [0.52 - 0.4, 0.495])  # margin 0.4 on record 0, label 0
    np.testing.assert_allclose(for_task(1, 0), [0.51 - 0.1, 0.495])
    np.testing.assert_allclose(for_task(0, 1), [0.51, 0.50 - 0.2])


def test_plausibility_of_a_delineable_record_and_the_reason_when_not():
    from ptbxl_xai.data.planted import generate_planted

    planted = generate_planted(1, seed=0, rate=RATE)
    ok = plausibility(planted.x[0], RATE, "neurokit_prominence")
    assert ok["delineates"] and ok["physiological"], ok
    assert 40 <= ok["qrs_ms"] <= 200
    flat = plausibility(np.zeros((12, T)), RATE, "neurokit_prominence")
    assert not flat["delineates"] and "does not delineate: flat signal" in flat["plausibility_reason"]


def test_summary_reports_validity_with_an_interval_and_the_randomised_control():
    rows = []
    for model, valid in (("trained", [1, 1, 1, 0]), ("randomised", [0, 0, 1, 0])):
        for v in valid:
            rows.append(dict(model=model, label="MI", kind="segments", unit="features", status="flipped" if v else
                             "not flipped", valid=bool(v), magnitude=2.0 if v else np.nan, rule_share=0.5,
                             delta_mv_max=0.1, changed_lead_ms=300.0, plausible=True, delineates=True, seconds=0.1))  # fmt: skip
    import pandas as pd

    table = summarize(pd.DataFrame(rows), n_boot=200)
    trained = table[table["model"] == "trained"].iloc[0]
    assert trained["validity"] == 0.75 and trained["n_predicted"] == 4
    assert trained["validity_low"] <= 0.75 <= trained["validity_high"]
    assert trained["control"].startswith("randomised fails more (25% vs 75% valid)")
