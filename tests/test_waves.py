"""Every explainer on wave features: SHAP additivity, attention normalisation, gradient sums, the
normal_template background, both spaces in one run, the background comparison and the beat figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.explain.backgrounds import background_summary, compare_backgrounds
from ptbxl_xai.explain.correlate import correlations_from_attributions
from ptbxl_xai.explain.methods.explain_records import explain_records
from ptbxl_xai.explain.methods.shap_explainer import explain_shap, gradient_shap
from ptbxl_xai.explain.spaces.attention import attention_to_bins, attention_to_space, step_segment_overlap
from ptbxl_xai.explain.spaces.features import SEGMENTS, bin_space, record_spaces, segment_labels, wave_space
from ptbxl_xai.explain.spaces.masking import Masker
from ptbxl_xai.explain.spaces.template import (
    N_POINTS,
    NormalTemplate,
    build_normal_template,
    normal_template_background,
)
from ptbxl_xai.report.plots.beats import beat_attribution, label_beat_profiles

T, PERIOD, RATE = 400, 80, 100
LEAD = LEADS.index("V2")


def beats_table(n=4, start=20, period=PERIOD, qrs=10, ecg_id=1) -> pd.DataFrame:
    """P 0-12, PR to 20, QRS 20..20+qrs (R in the middle), ST 10, T 25 samples after the QRS."""
    rows = []
    for k in range(n):
        o = start + k * period
        q_off = o + 20 + qrs - 1
        rows.append(
            dict(
                ecg_id=ecg_id,
                beat=k,
                p_on=o,
                p_off=o + 12,
                qrs_on=o + 20,
                r=o + 20 + qrs // 2,
                qrs_off=q_off,
                t_on=q_off + 11,
                t_off=q_off + 35,
            )
        )
    return pd.DataFrame(rows)


SPACE = wave_space(beats_table(), T)
QRS = SEGMENTS.index("QRS")
ST = SEGMENTS.index("ST")
QRS_SAMPLES = SPACE.segment_of_sample == QRS
ST_SAMPLES = SPACE.segment_of_sample == ST


class SegmentModel(torch.nn.Module):
    """Label 0 = sigmoid(2 * mean |V2| over QRS samples * (1 + mean V2 over ST)): QRS x ST interaction."""

    def forward(self, x):
        q = x[:, LEAD, torch.from_numpy(QRS_SAMPLES)].abs().mean(1)
        s = x[:, LEAD, torch.from_numpy(ST_SAMPLES)].mean(1)
        p = torch.sigmoid(2 * q * (1 + s) - 1)
        return torch.stack([p, 1 - p], 1)


MODEL = SegmentModel().eval()


def predict_proba(x):
    with torch.no_grad():
        return MODEL(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def make_record(seed=0, qrs_height=2.0):
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((12, T)).astype(np.float32)
    x[:, QRS_SAMPLES] += qrs_height
    x[LEAD, ST_SAMPLES] += 0.5
    return x


def test_shap_on_waves_is_additive_and_finds_the_segments():
    x = make_record()
    res = explain_shap(predict_proba, Masker(x, SPACE, "zero"), [0, 1], {"npermutations": 2}, seed=0)
    assert res.values.shape == (2, 12, len(SEGMENTS))
    assert res.n_evals == 2 * (2 * 72 + 1) + 1  # 72 wave features: 291 model calls, not 1443
    assert np.all(res.additivity < 1e-6)  # local accuracy holds to rounding with interactions
    v = res.values[0]
    top = np.argsort(-np.abs(v).ravel())[:2]
    assert set(top) == {SPACE.feature_index("V2", "QRS"), SPACE.feature_index("V2", "ST")}
    others = np.delete(v.ravel(), top)
    assert np.abs(others).max() < 1e-9  # features the model never reads get exactly nothing


def test_attention_on_a_space_is_the_coverage_normalised_mean_of_the_steps():
    edges = np.arange(0, T + 1, 10)  # 40 steps of 10 samples
    W = step_segment_overlap(edges, SPACE)
    np.testing.assert_allclose(W.sum(1), 1.0)
    flat = np.full(40, 1 / 40)
    got = attention_to_space(flat, edges, SPACE)
    np.testing.assert_allclose(got, 1 / 40)  # uniform attention: every segment equal, whatever its length
    one = np.zeros(40)
    one[2] = 1.0  # step 2 covers samples 20-29, inside the first beat's P wave (20-32)
    seg = SPACE.segment_of_sample[20:30]
    got = attention_to_space(one, edges, SPACE)
    coverage = W.sum(0)
    for s in range(len(SEGMENTS)):
        share = np.mean(seg == s)
        np.testing.assert_allclose(got[s], share / coverage[s] if coverage[s] else 0.0)
    # on equal bins the normalised map is the bin map divided by the constant coverage
    b = bin_space(T, 20)
    a = np.random.default_rng(0).random(40)
    np.testing.assert_allclose(attention_to_space(a, edges, b), attention_to_bins(a, edges, T, 20) / 2)


def test_gradient_shap_sums_per_sample_values_into_any_space():
    x = make_record()
    bg = np.stack([make_record(s, 0.0) for s in range(1, 5)])
    res = gradient_shap(MODEL, x, [0], bg, SPACE, {"gradient_nsamples": 8}, seed=0)
    assert res.values.shape == (1, 12, 6) and res.per_sample.shape == (1, 12, T)
    np.testing.assert_allclose(res.values.reshape(1, -1), SPACE.sum_samples(res.per_sample))
    bins = gradient_shap(MODEL, x, [0], bg, 20, {"gradient_nsamples": 8}, seed=0)
    np.testing.assert_allclose(bins.values.sum(), res.values.sum())


def _triangle_records(durations=(8, 10, 12), n=6):
    """NORM-like records whose QRS is a triangle of height 3 stretched to each beat's duration."""
    X, beats = [], []
    for i in range(n):
        qrs = durations[i % len(durations)]
        b = beats_table(qrs=qrs, ecg_id=i)
        seg, _ = segment_labels(b, T)
        x = np.zeros((12, T), dtype=np.float32)
        x[:, seg == SEGMENTS.index("T")] = 0.5
        for r in b.itertuples():
            L = r.qrs_off - r.qrs_on + 1
            x[:, r.qrs_on : r.qrs_off + 1] = 3 * (1 - np.abs(np.linspace(-1, 1, L)))
        X.append(x)
        beats.append(b)
    return np.stack(X), beats


def test_normal_template_is_the_median_norm_segment_stretched_to_the_record():
    X, beats = _triangle_records()
    tpl = build_normal_template(X, beats, RATE)
    assert tpl.n_records == 6 and tpl.shapes.shape == (12, len(SEGMENTS), N_POINTS)
    assert tpl.durations[QRS] == 10  # median QRS duration, samples
    qrs_shape = tpl.shapes[0, QRS]
    assert qrs_shape.max() == pytest.approx(3 * (1 - 1 / 9), abs=0.3) and qrs_shape[0] < 0.6  # a triangle
    np.testing.assert_allclose(tpl.shapes[:, SEGMENTS.index("T")], 0.5, atol=1e-6)
    np.testing.assert_allclose(tpl.shapes[:, SEGMENTS.index("P")], 0.0, atol=1e-6)
    # a record with a wide (20-sample) QRS gets the triangle stretched to 20 samples in every beat
    wide = beats_table(qrs=20)
    space = wave_space(wide, T)
    bg = normal_template_background(np.zeros((12, T), np.float32), space, tpl)
    for r in wide.itertuples():
        q = bg[0, r.qrs_on : r.qrs_off + 1]
        assert len(q) == 20 and np.argmax(q) in (9, 10) and q.max() > 2.3 and q[0] < 0.6
        np.testing.assert_allclose(bg[:, r.t_on : r.t_off + 1], 0.5, atol=1e-6)
    # time bins: the template's normal cycle repeated, one QRS per median cycle length
    bbg = normal_template_background(np.zeros((12, T), np.float32), bin_space(T, 20), tpl)
    cycle = int(np.round(tpl.durations).sum())
    assert (np.diff((bbg[0] > 2).astype(int)) == 1).sum() == pytest.approx(T / cycle, abs=1)
    # the Masker uses it as the all-masked record
    m = Masker(make_record(), space, "normal_template", template=tpl)
    np.testing.assert_array_equal(m(np.zeros((1, 72)))[0], bg)
    with pytest.raises(ValueError, match="NormalTemplate"):
        Masker(make_record(), space, "normal_template")


def test_normal_template_round_trips_through_npz(tmp_path):
    X, beats = _triangle_records()
    tpl = build_normal_template(X, beats, RATE)
    back = NormalTemplate.load(tpl.save(tmp_path / "template.npz"))
    np.testing.assert_array_equal(back.shapes, tpl.shapes)
    np.testing.assert_array_equal(back.durations, tpl.durations)
    assert back.n_records == tpl.n_records and back.rate == RATE
    assert not list(tmp_path.glob("*.tmp*"))


def test_record_spaces_waves_with_bins_beside_and_fallback():
    both = record_spaces("waves", T, 20, beats_table(), compare=True)
    assert [s.kind for s in both] == ["waves", "bins"]
    lost = record_spaces("waves", T, 20, beats_table().assign(qrs_on=-1), compare=True)
    assert [s.kind for s in lost] == ["bins"] and "fell back" in lost[0].notes[0]
    assert [s.kind for s in record_spaces("bins", T, 20, beats_table(), compare=True)] == ["bins", "waves"]
    assert [s.kind for s in record_spaces("waves", T, 20, None, compare=False)] == ["bins"]


def test_explain_records_in_both_spaces_with_the_normal_template():
    X = np.stack([make_record(0), make_record(1)])
    Xn, beats = _triangle_records()
    tpl = build_normal_template(Xn, beats, RATE)
    spaces = [record_spaces("waves", T, 20, beats_table()), record_spaces("waves", T, 20, None)]
    edges = np.arange(0, T + 1, 10)
    out = explain_records(
        predict_proba,
        X,
        [[0], [0, 1]],
        background="normal_template",
        template=tpl,
        shap_cfg={"npermutations": 1},
        lime_cfg={"num_samples": 200},
        attention_fn=lambda x: np.full((len(x), 40), 1 / 40),
        step_edges=edges,
        ecg_ids=[7, 8],
        label_names=["A", "B"],
        progress=False,
        spaces=spaces,
    )
    at = out.attributions
    assert {"feature", "feature_space"} <= set(at.columns)
    r7 = at[at.ecg_id == 7]
    assert set(r7.feature_space) == {"waves", "bins"}
    assert set(r7[r7.feature_space == "waves"].feature) == set(SEGMENTS)
    assert len(r7[(r7.feature_space == "waves") & (r7.method == "shap")]) == 72
    assert set(at[at.ecg_id == 8].feature_space) == {"bins"}  # not delineated: bins only
    notes = out.meta[(out.meta.ecg_id == 8)].notes.iloc[0]
    assert "fell back to 20 time bins" in notes
    assert (out.meta.background == "normal_template").all()
    assert (out.meta[out.meta.method == "shap"].additivity_error < 1e-6).all()
    assert set(zip(out.aucs.ecg_id, out.aucs.feature_space)) == {(7, "waves"), (7, "bins"), (8, "bins")}
    pts = out.curves[(out.curves.ecg_id == 7) & (out.curves.method == "shap") & (out.curves.kind == "deletion")]
    assert pts.groupby("feature_space").size().to_dict() == {"waves": 13, "bins": 13}  # 13 points in any space
    assert set(out.correlations.feature_space) == {"waves", "bins"}
    # the correlate rule recomputes the same per-space agreement from the stored long table
    per, summary = correlations_from_attributions(at, n_boot=0)
    key = ["ecg_id", "label", "feature_space", "method_a", "method_b", "space", "variant"]
    both = per.merge(out.correlations, on=key, suffixes=("", "_direct"))
    assert len(both) == len(out.correlations) and np.allclose(both.pearson, both.pearson_direct, equal_nan=True)
    assert set(summary.feature_space) == {"waves", "bins"}
    waves_shap = r7[(r7.feature_space == "waves") & (r7.method == "shap")]
    top = waves_shap.loc[waves_shap.value.abs().nlargest(2).index, ["lead", "feature"]]
    assert set(map(tuple, top.to_numpy())) == {("V2", "QRS"), ("V2", "ST")}


def test_background_comparison_rows_and_summary():
    X = np.stack([make_record(0), make_record(1)])
    spaces = [[wave_space(beats_table(), T)], [wave_space(beats_table(), T)]]
    cfg = {"shap": {"npermutations": 1}, "lime": {"num_samples": 200}, "seed": 0, "faithfulness": {"points": 7}}
    per = compare_backgrounds(predict_proba, X, [[0], [0]], ["A", "B"], [1, 2], spaces, ["zero", "blur"], cfg)
    assert set(per.background) == {"zero", "blur"} and set(per.method) == {"shap", "lime"}
    ref = per[per.background == "zero"]
    np.testing.assert_allclose(ref.spearman_vs_reference, 1.0)
    assert {"QRS", "ST", "deletion", "insertion", "random_deletion"} <= set(per.columns)
    summ = background_summary(per)
    assert len(summ) == 4 and (summ.n == 2).all()  # label A x {shap, lime} x {zero, blur}
    shap_zero = per[(per.background == "zero") & (per.method == "shap")]
    np.testing.assert_allclose(
        shap_zero[list(SEGMENTS)].sum(1), predict_proba(X)[:, 0] - predict_proba(np.zeros_like(X))[:, 0], atol=1e-6
    )


def test_beat_attribution_figure(tmp_path):
    X = {7: make_record(0), 8: make_record(1)}
    beats = {7: beats_table(ecg_id=7), 8: beats_table(ecg_id=8)}
    rows = []
    for e in X:
        for li, lead in enumerate(LEADS):
            for si, s in enumerate(SEGMENTS):
                rows.append(
                    dict(
                        ecg_id=e,
                        label="A",
                        method="shap",
                        feature_space="waves",
                        lead=lead,
                        feature=s,
                        bin=si,
                        value=float(si == QRS and li == LEAD),
                    )
                )
    at = pd.DataFrame(rows)
    prof = label_beat_profiles(at, X, beats, RATE, "shap")
    assert len(prof) == 1 and prof[0]["n_records"] == 2
    assert prof[0]["values"][LEAD, QRS] == 1.0 and np.nansum(prof[0]["values"]) == 1.0
    seg = prof[0]["segment_of_sample"]
    r_index = int(round(0.4 * RATE))
    assert SEGMENTS[seg[r_index]] == "QRS"  # R sits in the median beat's QRS
    paths = beat_attribution(at, X, beats, RATE, "shap", tmp_path / "beat_attribution_shap")
    assert [p.endswith(ext) for p, ext in zip(paths, (".png", ".pdf"))] == [True, True]
    empty = beat_attribution(at.iloc[:0], X, beats, RATE, "lime", tmp_path / "beat_attribution_lime")
    assert all(pd.io.common.file_exists(p) for p in empty)
