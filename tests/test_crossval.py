"""Cross-validation splits and pooling: each fold tests once, no record in train and test of one model."""

import json

import numpy as np
import pytest

from ecgxai.config import FOLDS, cv_splits, run_scheme
from ecgxai.evaluation.crossval import pool_predictions
from ecgxai.evaluation.predictions import read_predictions, write_predictions
from ecgxai.evaluation.thresholds import read_thresholds


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


def test_pooled_predictions_carry_each_records_fold_and_its_models_thresholds(tmp_path):
    ids = [[1, 2], [3], [4, 5, 6]]
    preds, thrs = _fold_files(tmp_path, [1, 2, 3], ids)
    pool_predictions(preds, thrs, [1, 2, 3], tmp_path / "cv.parquet", tmp_path / "cv.json")
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
        pool_predictions(preds, thrs, [1, 2], tmp_path / "cv.parquet", tmp_path / "cv.json")
    preds, thrs = _fold_files(tmp_path, [1, 2], [[1], [2]])
    with pytest.raises(ValueError, match="expected test fold 3"):
        pool_predictions(preds, thrs, [1, 3], tmp_path / "cv.parquet", tmp_path / "cv.json")
