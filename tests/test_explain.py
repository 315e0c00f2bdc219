"""Known-answer tests of ptbxl_xai.explain on tiny hand-made models (no HybridECGNet dependency)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from ptbxl_xai.evaluation.bootstrap import median_ci
from ptbxl_xai.explain.correlate import pearson, record_correlations, spearman, summarize
from ptbxl_xai.explain.methods.explain_records import Explanations, explain_records
from ptbxl_xai.explain.methods.faithfulness import curve_masks, faithfulness, ranking, step_counts
from ptbxl_xai.explain.methods.lime_explainer import explain_lime, sample_masks
from ptbxl_xai.explain.methods.shap_explainer import explain_shap, gradient_shap
from ptbxl_xai.explain.select import labels_to_explain, select_records
from ptbxl_xai.explain.spaces.attention import attention_to_bins, broadcast_leads, step_bin_overlap
from ptbxl_xai.explain.spaces.masking import Masker

T, N_BINS, W = 200, 20, 10  # 10 samples per bin keeps the tests fast
LEAD, BIN = 3, 7  # where label 0 looks
LEAD1, BIN1 = 0, 2  # where label 1 looks


class WindowModel(torch.nn.Module):
    """Label 0 = sigmoid(w * mean x[3, bin 7]); label 1 = sigmoid(w * mean x[0, bin 2])."""

    def __init__(self, w: float = 1.5):
        super().__init__()
        self.w = w

    def forward(self, x):
        a = x[:, LEAD, BIN * W : (BIN + 1) * W].mean(1)
        b = x[:, LEAD1, BIN1 * W : (BIN1 + 1) * W].mean(1)
        return torch.sigmoid(self.w * torch.stack([a, b], 1))


MODEL = WindowModel().eval()


def predict_proba(x):
    with torch.no_grad():
        return MODEL(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def make_record(seed=0):
    rng = np.random.default_rng(seed)
    x = 0.3 * rng.standard_normal((12, T)).astype(np.float32)
    x[LEAD, BIN * W : (BIN + 1) * W] += 2.0
    x[LEAD1, BIN1 * W : (BIN1 + 1) * W] += 1.0
    return x


def concentrated(v: np.ndarray, lead=LEAD, b=BIN):
    flat = np.abs(v).ravel()
    top = np.unravel_index(np.argmax(flat), v.shape)
    return top == (lead, b), flat[lead * v.shape[1] + b] / flat.sum()


# --- masking -------------------------------------------------------------------------------------


def test_masker_backgrounds_and_vectorised_masks():
    x = make_record()
    for kind, kw in [("zero", {}), ("mean", {"lead_means": np.arange(12.0)}), ("blur", {"blur_sigma_s": 0.05})]:
        m = Masker(x, N_BINS, kind, **kw)
        out = m(np.stack([np.ones(240), np.zeros(240)]))
        assert out.shape == (2, 12, T) and out.dtype == np.float32
        np.testing.assert_allclose(out[0], x, atol=1e-6)
        np.testing.assert_allclose(out[1], m.bg, atol=1e-6)
    assert np.all(Masker(x, N_BINS, "mean", lead_means=np.arange(12.0)).bg[5] == 5)
    blur = Masker(x, N_BINS, "blur").bg
    assert blur.std() < x.std()  # waves removed
    mask = np.ones(240)
    mask[LEAD * N_BINS + BIN] = 0
    out = Masker(x, N_BINS, "zero")(mask)[0]
    assert np.all(out[LEAD, BIN * W : (BIN + 1) * W] == 0)
    assert np.array_equal(
        np.delete(out.ravel(), np.s_[LEAD * T + BIN * W : LEAD * T + (BIN + 1) * W]),
        np.delete(x.ravel(), np.s_[LEAD * T + BIN * W : LEAD * T + (BIN + 1) * W]),
    )
    with pytest.raises(ValueError):
        Masker(x, N_BINS, "mean")
    with pytest.raises(ValueError):
        Masker(x, 7, "zero")


# --- SHAP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("explainer", ["permutation", "kernel"])
def test_model_agnostic_shap_known_answer_and_additivity(explainer):
    x = make_record()
    res = explain_shap(
        predict_proba, Masker(x, N_BINS, "zero"), [0, 1], {"npermutations": 2, "explainer": explainer}, seed=1
    )
    assert res.values.shape == (2, 12, N_BINS)
    ok, share = concentrated(res.values[0])
    assert ok and share > 0.8
    ok1, share1 = concentrated(res.values[1], LEAD1, BIN1)
    assert ok1 and share1 > 0.8
    # additive game: the exact answer is f(x) - f(background) on the one feature
    fx = predict_proba(x[None])[0]
    np.testing.assert_allclose(res.values[0, LEAD, BIN], fx[0] - 0.5, rtol=1e-5)
    np.testing.assert_allclose(res.base, [0.5, 0.5], atol=1e-6)
    assert np.all(res.additivity < 1e-4 * np.maximum(np.abs(res.fx), 1e-3))
    extra = 2 if explainer == "kernel" else 0  # kernel also evaluates f(background) and f(x) itself
    assert res.n_evals == 2 * (2 * 240 + 1) + 1 + extra


@pytest.mark.parametrize("explainer", ["permutation", "kernel"])
def test_shap_additivity_with_interactions(explainer):
    # a non-additive model: product of two windows; antithetic permutations still telescope
    def f(x):
        a = x[:, 1, 0:W].mean(1)
        b = x[:, 5, 3 * W : 4 * W].mean(1)
        c = x[:, 9].mean(1)
        return np.stack([1 / (1 + np.exp(-(a * b + c))), np.tanh(a - b * c)], 1)

    x = np.random.default_rng(3).standard_normal((12, T)).astype(np.float32) + 1
    res = explain_shap(f, Masker(x, N_BINS, "zero"), [0, 1], {"npermutations": 1, "explainer": explainer}, seed=0)
    assert np.all(res.additivity <= 1e-4 * np.maximum(np.abs(res.fx), 1e-3))


def test_gradient_shap_known_answer():
    x = make_record()
    bg = 0.3 * np.random.default_rng(5).standard_normal((16, 12, T)).astype(np.float32)
    res = gradient_shap(MODEL, x, [0, 1], bg, N_BINS, {"gradient_nsamples": 32}, seed=0)
    assert res.values.shape == (2, 12, N_BINS)
    ok, share = concentrated(res.values[0])
    assert ok and share > 0.8
    ok1, share1 = concentrated(res.values[1], LEAD1, BIN1)
    assert ok1 and share1 > 0.8


def test_shap_is_seeded_and_leaves_global_rng_alone():
    x = np.random.default_rng(1).standard_normal((12, T)).astype(np.float32)

    def f(z):  # a model with interactions, so permutations matter
        return np.stack([np.tanh(z[:, 0].mean(1) * z[:, 4].mean(1) + z[:, 2, :50].mean(1))], 1)

    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    a = explain_shap(f, Masker(x, N_BINS), [0], {"npermutations": 1}, seed=7).values
    assert np.random.random() == before
    b = explain_shap(f, Masker(x, N_BINS), [0], {"npermutations": 1}, seed=7).values
    np.testing.assert_array_equal(a, b)


# --- LIME ----------------------------------------------------------------------------------------


def test_lime_known_answer_seeded():
    x = make_record()
    m = Masker(x, N_BINS, "zero")
    res = explain_lime(predict_proba, m, [0, 1], None, seed=3)  # defaults: lime's Ridge(alpha=1)
    assert res.values.shape == (2, 12, N_BINS) and res.n_evals == 1000
    ok, share = concentrated(res.values[0])
    assert ok and share > 0.8
    ok1, share1 = concentrated(res.values[1], LEAD1, BIN1)
    assert ok1 and share1 > 0.8
    assert np.all(res.score > 0.95)  # the model is linear in the binary features
    again = explain_lime(predict_proba, m, [0, 1], None, seed=3)
    np.testing.assert_array_equal(res.values, again.values)


def test_lime_sampling():
    rng = np.random.default_rng(0)
    d = sample_masks(240, 500, rng)
    assert d.shape == (500, 240) and d[0].all()
    kept = d[1:].sum(1)
    assert kept.min() >= 1 and kept.max() <= 239 and kept.std() > 40  # spread of coalition sizes
    with pytest.raises(ValueError):
        sample_masks(240, 10, rng, "nope")


# --- attention -----------------------------------------------------------------------------------


def test_attention_to_bins_hand_made():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(attention_to_bins(a, np.array([0, 5, 10, 15, 20]), 20, 2), [0.3, 0.7])
    # the last step takes the samples the pooling left over: [12, 20) is 2/8 in bin 0
    np.testing.assert_allclose(
        attention_to_bins(a, np.array([0, 4, 8, 12, 20]), 20, 2), [0.1 + 0.2 + 0.3 * 0.5, 0.3 * 0.5 + 0.4]
    )
    # overlapping receptive fields [T', 2], clipped at the record edges
    iv = np.array([[-5, 5], [0, 10], [5, 15], [10, 25]])
    got = attention_to_bins(a, iv, 20, 2)
    np.testing.assert_allclose(got, [0.1 + 0.2 + 0.15, 0.15 + 0.4])
    assert got.sum() == pytest.approx(1.0)
    # callable edges and a batch
    got = attention_to_bins(np.stack([a, a[::-1]]), lambda T: np.linspace(0, T, 5), 20, 2)
    np.testing.assert_allclose(got, [[0.3, 0.7], [0.7, 0.3]])
    assert step_bin_overlap(np.array([0, 5, 10, 15, 20]), 20, 4).sum(1).tolist() == [1, 1, 1, 1]
    b = broadcast_leads(np.array([0.3, 0.7]))
    assert b.shape == (12, 2) and np.all(b[:, 1] == 0.7)
    with pytest.raises(ValueError):
        attention_to_bins(a, np.array([0, 10, 20]), 20, 2)


# --- correlation ---------------------------------------------------------------------------------


def test_correlations_hand_made():
    a = np.arange(10.0)
    assert pearson(a, 2 * a + 1) == (pytest.approx(1.0), "")
    assert pearson(a, -a)[0] == pytest.approx(-1.0)
    assert spearman(a, a**3)[0] == pytest.approx(1.0)
    r, why = pearson(a, np.ones(10))
    assert np.isnan(r) and why == "constant b"
    r, why = spearman(np.zeros(10), np.zeros(10))
    assert np.isnan(r) and why == "constant a and b"
    rng = np.random.default_rng(0)
    for _ in range(5):
        u, v = rng.integers(0, 5, 30).astype(float), rng.standard_normal(30)  # ties in u
        assert spearman(u, v)[0] == pytest.approx(stats.spearmanr(u, v)[0], abs=1e-12)
        assert pearson(u, v)[0] == pytest.approx(stats.pearsonr(u, v)[0], abs=1e-12)


def test_record_correlations_and_summary():
    shap = np.zeros((12, 4))
    shap[3] = [1, 2, 3, 4]
    lime = -shap
    att = np.array([0.1, 0.2, 0.3, 0.4])
    rows = pd.DataFrame(record_correlations(7, "X", {"shap": shap, "lime": lime}, att))
    get = rows.set_index(["method_a", "method_b", "space", "variant"])
    assert get.loc[("shap", "attention", "time", "signed"), "pearson"] == pytest.approx(1.0)
    assert get.loc[("lime", "attention", "time", "signed"), "spearman"] == pytest.approx(-1.0)
    assert get.loc[("lime", "attention", "time", "abs"), "pearson"] == pytest.approx(1.0)
    assert get.loc[("shap", "lime", "lead_time", "signed"), "pearson"] == pytest.approx(-1.0)
    assert get.loc[("shap", "lime", "lead_time", "signed"), "n"] == 48
    flat = pd.DataFrame(record_correlations(8, "X", {"shap": shap}, np.full(4, 0.25)))
    assert flat["pearson"].isna().all() and (flat["reason"] == "constant b").all()

    per = pd.DataFrame(
        dict(
            method_a="shap",
            method_b="attention",
            space="time",
            variant="signed",
            pearson=[0.1, 0.5, 0.9, np.nan],
            spearman=[0.2, 0.2, 0.2, 0.2],
        )
    )
    s = summarize(per, n_boot=500, seed=1).set_index("statistic")
    assert s.loc["pearson", "n"] == 3 and s.loc["pearson", "n_nan"] == 1
    assert s.loc["pearson", "median"] == pytest.approx(0.5) and s.loc["pearson", "mean"] == pytest.approx(0.5)
    assert 0.1 <= s.loc["pearson", "ci_low"] <= 0.5 <= s.loc["pearson", "ci_high"] <= 0.9
    assert s.loc["spearman", "ci_low"] == s.loc["spearman", "ci_high"] == pytest.approx(0.2)
    assert median_ci(np.array([0.1, 0.5, 0.9]), 500, seed=1) == (
        s.loc["pearson", "ci_low"],
        s.loc["pearson", "ci_high"],
    )
    assert np.isnan(median_ci(np.array([np.nan]))[0])


# --- faithfulness --------------------------------------------------------------------------------


def test_ranking_and_curve_masks():
    v = np.array([[0.1, 0.5], [-0.9, 0.3]])
    assert ranking(v).tolist() == [1, 3, 0, 2]
    assert ranking(v, "abs").tolist() == [2, 1, 3, 0]
    assert step_counts(240, 12).tolist() == list(range(0, 241, 12))
    assert step_counts(10, 4).tolist() == [0, 4, 8, 10]
    d = curve_masks(np.array([2, 0, 1]), "deletion", 1)
    np.testing.assert_array_equal(d, [[1, 1, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(curve_masks(np.array([2, 0, 1]), "insertion", 1), 1 - d)


def test_deletion_curve_known_answer():
    x = make_record()
    m = Masker(x, N_BINS, "zero")
    res = explain_shap(predict_proba, m, [0], {"npermutations": 1}, seed=0)
    curves, aucs = faithfulness(predict_proba, m, [0], {"shap": res.values}, step=1, seed=0, ecg_id=11)
    d = curves[(curves.method == "shap") & (curves.kind == "deletion")].sort_values("k")
    p0 = predict_proba(x[None])[0, 0]
    assert d.prob.iloc[0] == pytest.approx(p0)
    np.testing.assert_allclose(d.prob.iloc[1:], 0.5, atol=1e-6)  # all the evidence goes with the first bin
    ins = curves[(curves.method == "shap") & (curves.kind == "insertion")].sort_values("k")
    np.testing.assert_allclose(ins.prob.iloc[1:], p0, atol=1e-6)
    a = aucs.set_index(["method", "kind"])["auc"]
    assert a[("shap", "deletion")] < a[("random", "deletion")]
    assert a[("shap", "insertion")] > a[("random", "insertion")]
    assert set(aucs.ecg_id) == {11} and len(curves) == 2 * 2 * 241


# --- selection -----------------------------------------------------------------------------------


def _preds():
    probs = np.array(
        [[0.9, 0.1, 0.6], [0.8, 0.7, 0.2], [0.3, 0.95, 0.35], [0.55, 0.2, 0.9], [0.1, 0.4, 0.45], [0.7, 0.62, 0.1]]
    )
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 0], [1, 0, 0]])
    return probs, y, np.array([10, 11, 12, 13, 14, 15])


def test_select_confident_tp_and_errors():
    probs, y, ids = _preds()
    tp = select_records(probs, y, ids, "confident_tp", 4, label_names=["A", "B", "C"])
    # round robin: best A (10), best B (12), best C (13), then 2nd A (11)
    assert tp.ecg_id.tolist() == [10, 12, 13, 11] and tp.label.tolist() == ["A", "B", "C", "A"]
    assert (tp.reason == "true_positive").all()
    err = select_records(probs, y, ids, "errors", 3)
    # FN 14/A (conf .9), FN 12/C (.65), FP 15/B (.62), then FP 10/C (.6), FP 13/A (.55)
    assert err.ecg_id.tolist() == [14, 12, 15]
    assert err.reason.tolist() == ["false_negative", "false_negative", "false_positive"]
    err_thr = select_records(probs, y, ids, "errors", 5, thresholds=[0.5, 0.65, 0.5])
    assert err_thr.ecg_id.tolist() == [14, 12, 10, 13]  # 15/B is no longer predicted at 0.65


def test_select_random_seeded_and_labels():
    probs, y, ids = _preds()
    a = select_records(probs, y, ids, "random", 3, seed=4)
    b = select_records(probs, y, ids, "random", 3, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert len(set(a.ecg_id)) == 3
    assert select_records(probs, y, ids, "random", 99).shape[0] == 6
    with pytest.raises(ValueError):
        select_records(probs, y, ids, "best", 3)
    assert labels_to_explain(probs[[0, 4]], 0.5, top_k=1) == [[0, 2], [2]]
    assert labels_to_explain(probs[1], 0.5, top_k=3) == [[0, 1, 2]]
    assert labels_to_explain(probs[3], [0.5, 0.5, 0.95], top_k=0) == [[0]]


# --- end to end ----------------------------------------------------------------------------------


def test_explain_records_end_to_end(tmp_path):
    X = np.stack([make_record(0), make_record(1)])
    edges = np.linspace(0, T, 11).astype(int)  # 10 attention steps of 20 samples = 2 bins each

    def attention_fn(x):
        a = np.full((len(x), 10), 0.05)
        a[:, BIN // 2] = 0.55  # step 3 covers bins 6 and 7
        return a

    bg = 0.3 * np.random.default_rng(0).standard_normal((8, 12, T)).astype(np.float32)
    out = explain_records(
        predict_proba,
        X,
        [[0, 1], [0]],
        n_bins=N_BINS,
        background="zero",
        shap_cfg={"npermutations": 1, "gradient_nsamples": 16},
        lime_cfg={"num_samples": 300},
        attention_fn=attention_fn,
        step_edges=edges,
        seed=0,
        progress=False,
        ecg_ids=[101, 102],
        label_names=["A", "B"],
        gradient_model=MODEL,
        gradient_background=bg,
        faithfulness_cfg={"step": 24},
    )
    assert isinstance(out, Explanations)
    at = out.attributions
    assert list(at.columns) == ["ecg_id", "label", "method", "feature_space", "lead", "feature", "bin", "value"]
    assert set(at.method) == {"shap", "lime", "attention", "shap_gradient"}
    assert set(at.feature_space) == {"bins"} and at.feature.iloc[:N_BINS].tolist() == [f"bin{b:02d}" for b in range(20)]
    assert len(at) == 4 * (2 + 1) * 12 * N_BINS
    one = at[(at.ecg_id == 101) & (at.label == "A") & (at.method == "attention")]
    # coverage-normalised: each bin shows the attention of the step covering it, the same on every lead
    expected = np.repeat(attention_fn(X[:1])[0], 2)
    for _, row in one.groupby("lead"):
        np.testing.assert_allclose(row.sort_values("bin").value, expected)
    shap_a = at[(at.ecg_id == 102) & (at.method == "shap")]
    assert shap_a.loc[shap_a.value.abs().idxmax(), ["lead", "bin"]].tolist() == ["AVR", BIN]
    m = out.meta
    assert (m[m.method == "shap"].additivity_error < 1e-6).all()
    assert m[m.method == "lime"].score.between(0.9, 1.0).all()
    assert {"shap", "lime", "attention", "random"} <= set(out.aucs.method)
    pairs = set(zip(out.correlations.method_a, out.correlations.method_b))
    assert {("shap", "attention"), ("lime", "attention"), ("shap", "lime"), ("shap", "shap_gradient")} <= pairs
    assert not out.correlation_summary.empty
    for name in ("attributions", "meta", "correlations", "correlation_summary", "curves", "aucs"):
        getattr(out, name).to_parquet(tmp_path / f"{name}.parquet")
    # seeded: the same call gives the same numbers
    again = explain_records(
        predict_proba,
        X[:1],
        [[0, 1]],
        n_bins=N_BINS,
        background="zero",
        shap_cfg={"npermutations": 1},
        lime_cfg={"num_samples": 300},
        seed=0,
        progress=False,
        ecg_ids=[101],
        label_names=["A", "B"],
        faithfulness_cfg={"enabled": False},
    )
    a1 = at[(at.ecg_id == 101) & at.method.isin(["shap", "lime"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(a1, again.attributions.reset_index(drop=True))
    with pytest.raises(ValueError):
        explain_records(
            predict_proba, X, [[0], [0]], n_bins=N_BINS, background="zero", attention_fn=attention_fn, progress=False
        )


def test_a_records_second_space_can_get_only_shap_and_attention():
    """The default explain stage: everything on waves, and on time bins only SHAP and attention for the paper's
    Figures 1-3 (no LIME, no faithfulness curves there); the wave results are those of waves alone."""
    from ptbxl_xai.explain.spaces.features import FIDUCIALS, bin_space, wave_space

    x = make_record(0)[None]
    starts = np.arange(10, T - 60, 50)
    beats = np.stack([starts + k * 6 for k in range(len(FIDUCIALS))], axis=1)
    waves, bins = wave_space(beats, T), bin_space(T, N_BINS)
    edges = np.linspace(0, T, 11).astype(int)
    common = dict(background="zero", shap_cfg={"npermutations": 1}, lime_cfg={"num_samples": 200}, seed=0,
                  progress=False, ecg_ids=[7], label_names=["A", "B"], correlations=False,
                  attention_fn=lambda z: np.full((len(z), 10), 0.1), step_edges=edges)  # fmt: skip
    out = explain_records(predict_proba, x, [[0, 1]], spaces=[[waves, bins]], other_space_methods=("shap",), **common)
    alone = explain_records(predict_proba, x, [[0, 1]], spaces=[[waves]], **common)
    at = out.attributions
    assert set(at[at.feature_space == "waves"].method) == {"shap", "lime", "attention"}
    assert set(at[at.feature_space == "bins"].method) == {"shap", "attention"}
    assert set(out.aucs.feature_space) == {"waves"} and set(out.meta[out.meta.feature_space == "bins"].method) == {
        "shap"
    }
    pd.testing.assert_frame_equal(
        at[at.feature_space == "waves"].reset_index(drop=True), alone.attributions.reset_index(drop=True)
    )
