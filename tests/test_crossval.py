"""Cross-validation splits and pooling: each fold tests once, no record in train and test of one model."""

import json

import numpy as np
import pandas as pd
import pytest

from ptbxl_xai.config import FOLDS, cv_splits, run_scheme
from ptbxl_xai.evaluation.predictions import read_predictions, write_predictions
from ptbxl_xai.evaluation.thresholds import read_thresholds
from ptbxl_xai.stages.train import pool_cv


def test_every_fold_is_test_exactly_once_and_never_trains_its_own_model():
    tests = [cv_splits(k)["test"] for k in FOLDS]
    assert sorted(f for t in tests for f in t) == list(FOLDS)
    for k in FOLDS:
        s = cv_splits(k)
        train, val, test = set(s["train"]), set(s["val"]), set(s["test"])
        assert test == {k} and val == {k % 10 + 1}
        assert not train & test and not train & val and not val & test
        assert train | val | test == set(FOLDS)
    with pytest.raises(ValueError):
        cv_splits(11)


def test_scheme_per_run_falls_back_to_the_evaluate_section():
    config = {"runs": {"a": {}, "b": {"scheme": "crossval"}}, "evaluate": {"scheme": "holdout"}}
    assert run_scheme(config, "a") == "holdout" and run_scheme(config, "b") == "crossval"


def _fold_files(tmp_path, folds, ids_per_fold, names=("A", "B")):
    preds, thrs = [], []
    rng = np.random.default_rng(0)
    for k, ids in zip(folds, ids_per_fold):
        n = len(ids)
        path = tmp_path / f"fold{k}.parquet"
        write_predictions(path, ids, rng.integers(0, 2, (n, 2)), rng.random((n, 2)), np.ones((n, 4)) / 4, names,
                          {"folds": [k], "split": "test", "label_set": "x"})  # fmt: skip
        thr = tmp_path / f"fold{k}.json"
        thr.write_text(json.dumps({"label_set": "x", "thresholds": {"A": 0.1 * k, "B": 0.5}}))
        preds.append(path)
        thrs.append(thr)
    return preds, thrs


def _pool(tmp_path, preds, thrs, folds):
    """Rule pool_cv on the fold files."""
    return pool_cv(predictions=preds, thresholds=thrs, folds=folds, out_predictions=tmp_path / "cv.parquet",
                   out_thresholds=tmp_path / "cv.json")  # fmt: skip


def test_pooled_predictions_carry_each_records_fold_and_its_models_thresholds(tmp_path):
    ids = [[1, 2], [3], [4, 5, 6]]
    preds, thrs = _fold_files(tmp_path, [1, 2, 3], ids)
    _pool(tmp_path, preds, thrs, [1, 2, 3])
    pooled = read_predictions(tmp_path / "cv.parquet")
    assert pooled["ecg_id"].tolist() == [1, 2, 3, 4, 5, 6]
    assert pooled["test_fold"].tolist() == [1, 1, 2, 3, 3, 3]
    thr = read_thresholds(tmp_path / "cv.json", ["A", "B"], test_fold=pooled["test_fold"])
    np.testing.assert_allclose(thr[:, 0], [0.1, 0.1, 0.2, 0.3, 0.3, 0.3])
    with pytest.raises(ValueError, match="test folds"):
        read_thresholds(tmp_path / "cv.json", ["A", "B"])


def test_pooling_refuses_a_record_in_two_test_folds_and_foreign_folds(tmp_path):
    preds, thrs = _fold_files(tmp_path, [1, 2], [[1, 2], [2, 3]])
    with pytest.raises(ValueError, match="more than one test fold"):
        _pool(tmp_path, preds, thrs, [1, 2])
    preds, thrs = _fold_files(tmp_path, [1, 2], [[1], [2]])
    with pytest.raises(ValueError, match="expected test fold 3"):
        _pool(tmp_path, preds, thrs, [1, 3])


def test_ablation_pairs_each_variant_with_the_reference_of_its_seed(tmp_path):
    from ptbxl_xai.evaluation.ablation import paired_against_reference, summarize
    from ptbxl_xai.report.ablation import ablation_table

    rng = np.random.default_rng(1)
    ids, y = np.arange(1, 121), rng.integers(0, 2, (120, 2))
    good = np.clip(0.6 * y + 0.4 * rng.random((120, 2)), 0, 1)
    runs = []
    for variant, probs in (
        ("hybrid", good),
        ("same", good.copy()),
        ("noisy", np.clip(good + rng.normal(0, 0.4, good.shape), 0, 1)),
    ):
        pred, thr = tmp_path / f"{variant}.parquet", tmp_path / f"{variant}.json"
        write_predictions(pred, ids[::-1], y[::-1], probs[::-1], np.ones((120, 3)) / 3, ["A", "B"], {"folds": [10]})
        thr.write_text(json.dumps({"thresholds": {"A": 0.5, "B": 0.5}}))
        runs.append({"variant": variant, "seed": 0, "run": f"abl-{variant}-s0", "predictions": pred, "thresholds": thr})
    paired = paired_against_reference(runs, "hybrid", n_boot=200).set_index(["variant", "metric"])
    assert paired.at[("same", "macro_auc"), "delta"] == 0 and paired.at[
        ("same", "macro_auc"), "p_value"
    ] == pytest.approx(1)
    assert paired.at[("noisy", "macro_auc"), "delta"] < 0 and paired.at[("noisy", "macro_auc"), "p_value"] < 0.05
    per_run = pd.DataFrame({"variant": ["hybrid", "same", "noisy"], "seed": 0, "macro_auc": 0.8, "macro_f1_tuned": 0.5,
                            "fmax": 0.6, "parameters": 1, "seconds_per_epoch": 1.0, "inference_ms_per_record": 1.0,
                            "test_records": 120, "split": "holdout"})  # fmt: skip
    summary = summarize(per_run, paired.reset_index())
    ablation_table(summary, tmp_path / "ablation", "hybrid", "Data: test")
    md = (tmp_path / "ablation.md").read_text()
    assert "ΔAUC vs hybrid" in md and "reference" in md and "+0.000 [+0.000, +0.000]" in md


def test_ablation_per_label_shows_the_one_label_a_variant_changes(tmp_path):
    """A variant that degrades label B only: the macro Δ averages it away, the per-label table names B."""
    from sklearn.metrics import roc_auc_score

    from ptbxl_xai.evaluation.ablation import paired_per_label
    from ptbxl_xai.report.ablation import per_label_table

    rng = np.random.default_rng(2)
    ids, y = np.arange(1, 201), rng.integers(0, 2, (200, 2))
    good = np.clip(0.6 * y + 0.4 * rng.random((200, 2)), 0, 1)
    worse_b = good.copy()
    worse_b[:, 1] = np.clip(good[:, 1] + rng.normal(0, 0.5, 200), 0, 1)
    runs = []
    for seed in (0, 1):
        for variant, probs in (("hybrid", good), ("worse_b", worse_b)):
            pred, thr = tmp_path / f"{variant}{seed}.parquet", tmp_path / f"{variant}{seed}.json"
            write_predictions(pred, ids, y, probs, np.ones((200, 3)) / 3, ["A", "B"], {"folds": [10]})
            thr.write_text(json.dumps({"thresholds": {"A": 0.5, "B": 0.5}}))
            runs.append({"variant": variant, "seed": seed, "run": f"abl-{variant}-s{seed}", "predictions": pred,
                         "thresholds": thr})  # fmt: skip
    per_label = paired_per_label(runs, "hybrid", n_boot=200)
    assert len(per_label) == 4 and set(per_label.reference_run) == {"abl-hybrid-s0", "abl-hybrid-s1"}
    a, b = (per_label[per_label.label == name].iloc[0] for name in ("A", "B"))
    assert a.delta == 0 and a.p_value == pytest.approx(1)
    assert b.auc_reference == pytest.approx(roc_auc_score(y[:, 1], good[:, 1]))
    assert b.auc_variant == pytest.approx(roc_auc_score(y[:, 1], worse_b[:, 1]))
    assert b.delta < 0 and b.ci_high < 0 and b.p_value < 0.05 and b.positives == y[:, 1].sum()
    per_label_table(per_label, tmp_path / "per_label", "hybrid", "Data: test")
    md = (tmp_path / "per_label.md").read_text()
    assert "worse_b" in md and "(2/2 down)" in md and f"B (n+ {y[:, 1].sum()})" in md
    assert md.count("up)") == 0 and "+0.000 |" in md  # label A: unchanged, nothing marked
