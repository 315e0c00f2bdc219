"""evaluate() against scikit-learn, undefined-AUC handling, Fmax, bootstrap and threshold tuning."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_score, recall_score, roc_auc_score

from ptbxl_xai.evaluation.calibration import reliability_bins
from ptbxl_xai.evaluation.metrics import _all_metrics, evaluate, macro_auc, paired_comparison, roc_auc_per_label
from ptbxl_xai.evaluation.thresholds import f1_over_grid, tune_thresholds


def _data(n=200, C=4, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, C)) < 0.35).astype(np.uint8)
    # rounded scores create ties, which AUC must count as 1/2
    p = np.round(np.clip(0.35 * y + 0.65 * rng.random((n, C)), 0, 1), 2)
    return y, p


def _sk(y, p, thr):
    pred = (p >= thr).astype(int)
    out = {"macro_auc": roc_auc_score(y, p, average="macro"), "micro_auc": roc_auc_score(y, p, average="micro")}
    for avg in ("macro", "micro", "weighted"):
        out[f"{avg}_f1"] = f1_score(y, pred, average=avg, zero_division=0)
    for avg in ("macro", "micro"):
        out[f"{avg}_precision"] = precision_score(y, pred, average=avg, zero_division=0)
        out[f"{avg}_recall"] = recall_score(y, pred, average=avg, zero_division=0)
    out["hamming_loss"] = hamming_loss(y, pred)
    out["subset_accuracy"] = accuracy_score(y, pred)
    return out


def test_evaluate_matches_sklearn():
    y, p = _data()
    thr = np.array([0.3, 0.45, 0.6, 0.5])
    overall, per_label = evaluate(y, p, thr, ["a", "b", "c", "d"], n_boot=0)
    got = overall.set_index("metric")["value"]
    for tag, t in (("0.5", 0.5), ("tuned", thr)):
        for name, v in _sk(y, p, t).items():
            key = name if name.endswith("auc") else f"{name}@{tag}"
            assert got[key] == pytest.approx(v, abs=1e-12), key
    assert list(overall.columns) == ["metric", "value", "ci_low", "ci_high", "n_labels_used", "note", "bootstrap"]
    assert (overall.n_labels_used == 4).all() and overall.ci_low.isna().all()
    pred = (p >= thr).astype(int)
    np.testing.assert_allclose(per_label.auc, roc_auc_score(y, p, average=None))
    np.testing.assert_allclose(per_label.f1, f1_score(y, pred, average=None))
    np.testing.assert_allclose(per_label.precision, precision_score(y, pred, average=None))
    np.testing.assert_allclose(per_label.recall, recall_score(y, pred, average=None))
    assert per_label.support.tolist() == y.sum(0).tolist()
    np.testing.assert_allclose(per_label.prevalence, y.mean(0))
    assert macro_auc(y, p) == (pytest.approx(roc_auc_score(y, p)), 4)


def test_labels_without_positives_are_excluded_with_a_note():
    y, p = _data(C=5, seed=1)
    y[:, 2] = 0  # no positives
    y[:, 4] = 1  # no negatives
    overall, per_label = evaluate(y, p, np.full(5, 0.5), ["A", "B", "EMPTY", "D", "FULL"], n_boot=50)
    row = overall.set_index("metric").loc["macro_auc"]
    assert row.value == pytest.approx(roc_auc_score(y[:, [0, 1, 3]], p[:, [0, 1, 3]]))
    assert row.n_labels_used == 3 and "EMPTY" in row.note and "FULL" in row.note
    assert np.isfinite([row.value, row.ci_low, row.ci_high]).all()
    assert np.isnan(per_label.auc[2]) and per_label.note[2] == "no positives in test set"
    assert np.isnan(per_label.auc[4]) and per_label.note[4] == "no negatives in test set"
    assert per_label.note[0] == "" and np.isfinite(per_label.auc[[0, 1, 3]]).all()
    np.testing.assert_array_equal(np.isnan(roc_auc_per_label(y, p)), [False, False, True, False, True])
    assert "EMPTY" in overall.set_index("metric").loc["macro_f1_all_labels@0.5", "note"]
    assert not overall.value.isna().any()


def test_macro_f1_and_auc_use_one_label_set():
    """Headline macro F1/precision/recall average the labels the macro AUC uses; *_all_labels keep every label."""
    y, p = _data(n=120, C=5, seed=6)
    y[:, 1] = 0  # no test positive: no AUC, F1 forced to 0
    thr = np.array([0.4, 0.5, 0.5, 0.6, 0.45])
    overall, _ = evaluate(y, p, thr, list("abcde"), n_boot=0)
    got = overall.set_index("metric")
    keep = [0, 2, 3, 4]
    pred = p >= thr
    assert got.at["macro_auc", "value"] == pytest.approx(roc_auc_score(y[:, keep], p[:, keep]))
    for name, fn in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
        over_auc_set = fn(y[:, keep], pred[:, keep], average="macro", zero_division=0)
        over_all = fn(y, pred, average="macro", zero_division=0)
        assert got.at[f"macro_{name}@tuned", "value"] == pytest.approx(over_auc_set), name
        assert got.at[f"macro_{name}_all_labels@tuned", "value"] == pytest.approx(over_all), name
        assert got.at[f"macro_{name}@tuned", "n_labels_used"] == got.at["macro_auc", "n_labels_used"] == 4
        assert got.at[f"macro_{name}_all_labels@tuned", "n_labels_used"] == 5
    assert got.at["macro_f1@tuned", "value"] > got.at["macro_f1_all_labels@tuned", "value"]


def _benchmark_by_hand(y, p, n_boot, seed, ci=0.95):
    """The PTB-XL benchmark's loop (get_appropriate_bootstrap_samples) with scikit-learn per replicate."""
    rng = np.random.default_rng(seed)
    labels = [c for c in range(y.shape[1]) if 0 < y[:, c].sum() < len(y)]
    aucs, drawn = [], 0
    while len(aucs) < n_boot:
        idx = rng.integers(0, len(y), len(y))
        drawn += 1
        yy = y[idx][:, labels]
        if yy.sum(0).min() == 0 or (len(y) - yy.sum(0)).min() == 0:
            continue  # a label lacks a positive (or a negative): draw again
        aucs.append(roc_auc_score(yy, p[idx][:, labels], average="macro"))
    lo, hi = np.percentile(aucs, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return lo, hi, drawn


def test_bootstrap_redraws_replicates_lacking_positives_as_the_benchmark():
    y, p = _data(n=40, C=3, seed=7)
    y[:, 2] = 0
    y[[3, 17], 2] = 1  # a rare label: about 1 replicate in 8 lacks it and is drawn again
    overall, _ = evaluate(y, p, 0.5, list("abc"), n_boot=300, seed=11)
    row = overall.set_index("metric").loc["macro_auc"]
    lo, hi, drawn = _benchmark_by_hand(y, p, 300, 11)
    assert (row.ci_low, row.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert drawn > 300 and f"{drawn} drawn" in row.bootstrap and "benchmark" in row.bootstrap


def test_bootstrap_falls_back_and_says_so_when_the_benchmark_scheme_is_infeasible():
    y, p = _data(n=30, C=12, seed=8)
    y[:, 4:] = 0
    y[np.arange(8), np.arange(4, 12)] = 1  # 8 labels with a single positive: ~2% of replicates hold all
    overall, _ = evaluate(y, p, 0.5, [str(i) for i in range(12)], n_boot=200, seed=0, max_draws=2000)
    row = overall.set_index("metric").loc["macro_auc"]
    assert "infeasible" in row.bootstrap and np.isfinite([row.ci_low, row.ci_high]).all()


def test_bootstrap_replicate_equals_metric_on_resampled_records():
    y, p = _data(n=150, seed=2)
    thr = np.array([0.4, 0.5, 0.55, 0.45])
    idx = np.random.default_rng(3).integers(0, len(y), len(y))
    w = np.bincount(idx, minlength=len(y))[None].astype(float)
    got = {k: v[0] for k, v in _all_metrics(y > 0, p, thr, w).items()}
    for name, v in _sk(y[idx], p[idx], thr).items():
        key = name if name.endswith("auc") else f"{name}@tuned"
        assert got[key] == pytest.approx(v, abs=1e-12), key


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    y, p = _data(n=300, seed=4)
    a, _ = evaluate(y, p, 0.5, list("abcd"), n_boot=200, seed=1)
    b, _ = evaluate(y, p, 0.5, list("abcd"), n_boot=200, seed=1)
    c, _ = evaluate(y, p, 0.5, list("abcd"), n_boot=200, seed=2)
    assert a.equals(b) and not a.ci_low.equals(c.ci_low)
    auc = a.set_index("metric").loc[["macro_auc", "micro_auc", "macro_f1@0.5", "subset_accuracy@0.5"]]
    assert (auc.ci_low <= auc.value).all() and (auc.value <= auc.ci_high).all() and (auc.ci_low < auc.ci_high).all()
    narrow, _ = evaluate(y, p, 0.5, list("abcd"), n_boot=200, seed=1, ci=0.5)
    assert (narrow.ci_high - narrow.ci_low <= a.ci_high - a.ci_low + 1e-12).all()


def test_paired_comparison_of_identical_runs_gives_zero_and_p_one():
    y, p = _data(n=150, seed=9)
    thr = np.array([0.4, 0.5, 0.55, 0.45])
    table = paired_comparison(y, p, thr, p.copy(), thr.copy(), n_boot=200, seed=3).set_index("metric")
    assert (table.delta == 0).all() and (table.ci_low == 0).all() and (table.ci_high == 0).all()
    assert table.p_value.tolist() == pytest.approx([1.0] * len(table))
    assert (table.n_records == 150).all() and (table.n_labels_used == 4).all()


def test_paired_comparison_detects_a_better_run_and_matches_the_point_difference():
    y, p = _data(n=300, seed=10)
    noisy = np.clip(p + np.random.default_rng(0).normal(0, 0.35, p.shape), 0, 1)
    table = paired_comparison(y, noisy, 0.5, p, 0.5, n_boot=300, seed=0).set_index("metric")
    row = table.loc["macro_auc"]
    assert row.delta == pytest.approx(roc_auc_score(y, p) - roc_auc_score(y, noisy))
    assert row.value_b == pytest.approx(roc_auc_score(y, p)) and row.delta > 0
    assert 0 < row.ci_low < row.delta < row.ci_high and row.p_value < 0.01


def test_calibration_against_hand_computation():
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.95], [0.15], [0.65], [0.62]])
    overall, per_label = evaluate(y, p, 0.5, ["a"], n_boot=0)
    # Brier: (0.05^2 + 0.15^2 + 0.35^2 + 0.62^2) / 4; ECE with 10 bins: records 3 and 4 share bin
    # [0.6, 0.7): |0.65 + 0.62 - 1| / 4, the others alone: (0.05 + 0.15) / 4
    brier = (0.05**2 + 0.15**2 + 0.35**2 + 0.62**2) / 4
    ece = (0.05 + 0.15 + abs(0.65 + 0.62 - 1)) / 4
    got = overall.set_index("metric")["value"]
    assert got["brier"] == pytest.approx(brier) and per_label.brier[0] == pytest.approx(brier)
    assert got["ece"] == pytest.approx(ece) and per_label.ece[0] == pytest.approx(ece)
    bins = reliability_bins(y, p, ["a"])
    row = bins[(bins.label == "a") & (bins.bin_low == 0.6)].iloc[0]
    assert row.n == 2 and row.mean_prob == pytest.approx(0.635) and row.observed == pytest.approx(0.5)


def test_per_record_thresholds_of_pooled_folds():
    y, p = _data(n=100, seed=12)
    thr = np.where(np.arange(100)[:, None] < 50, 0.3, 0.6) * np.ones((1, 4))
    overall, _ = evaluate(y, p, thr, list("abcd"), n_boot=0)
    pred = p >= thr
    assert overall.set_index("metric").at["macro_f1@tuned", "value"] == pytest.approx(
        f1_score(y, pred, average="macro", zero_division=0)
    )


def test_cluster_bootstrap_resamples_records_whole():
    from ptbxl_xai.evaluation.bootstrap import cluster_weights, weighted_median

    x = np.array([0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8])
    rec = np.array([7, 7, 7, 3, 3, 5, 9])
    w = next(cluster_weights(rec, 50, np.random.default_rng(0)))
    for row in w:  # the labels of one record carry one count
        for r in np.unique(rec):
            assert len(set(row[rec == r])) == 1
        expanded = np.repeat(x, row.astype(int))
        assert weighted_median(x, row[None])[0] == pytest.approx(np.median(expanded))


def test_fmax_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.2], [0.4, 0.6], [0.7, 0.3]])
    # t in (0.2, 0.3]: every record predicts its true labels except record 1, which also predicts
    # label 0: precision (1 + 1/2 + 1)/3 = 5/6, recall 1 -> F = 10/11; the same F is reached
    # for t in (0.4, 0.6] (precision 1, recall (1 + 1 + 1/2)/3 = 5/6); the lower threshold wins.
    overall, _ = evaluate(y, p, 0.5, ["x", "y"], n_boot=0)
    row = overall.set_index("metric").loc["fmax"]
    assert row.value == pytest.approx(10 / 11)
    assert row.note == "global threshold 0.21"


def test_tune_thresholds_hand_example():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [1, 0]])
    p = np.array([[0.9, 0.1], [0.6, 0.9], [0.55, 0.3], [0.2, 0.2], [0.3, 0.8]])
    grid = np.array([0.25, 0.5, 0.58, 0.95])
    # label 0: F1 = 6/7, 4/6, 4/5, 0 at the four thresholds -> 0.25; label 1 has no positives -> 0.5
    np.testing.assert_allclose(f1_over_grid(y, p, grid)[0], [6 / 7, 4 / 6, 4 / 5, 0])
    np.testing.assert_array_equal(tune_thresholds(y, p, grid), [0.25, 0.5])


def test_tune_thresholds_maximises_f1():
    y, p = _data(n=300, C=6, seed=5)
    grid = np.linspace(0.05, 0.95, 91)
    thr = tune_thresholds(y, p)
    for c in range(y.shape[1]):
        f1s = [f1_score(y[:, c], p[:, c] >= t, zero_division=0) for t in grid]
        assert f1_score(y[:, c], p[:, c] >= thr[c]) == pytest.approx(max(f1s))
        assert thr[c] == pytest.approx(grid[int(np.argmax(f1s))])


def test_input_validation():
    y, p = _data()
    with pytest.raises(ValueError):
        evaluate(y, p[:, :3], 0.5, list("abc"))
    with pytest.raises(ValueError):
        evaluate(y, p, 0.5, list("abc"))
    with pytest.raises(ValueError):
        tune_thresholds(y, p[:10])
