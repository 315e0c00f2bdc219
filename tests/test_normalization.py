"""preprocess.normalize: train_standard fits its per-lead scaler on folds 1-8 only and keeps mV recoverable."""

import json

import numpy as np
import pytest

from ecgxai.config import SPLITS, FilterSettings
from ecgxai.data import parquet_io as dataset
from ecgxai.data.normalization import STATS_FILE, standardize_parts


def _write(tmp_path, fold, x, first_id):
    d = tmp_path / f"fold={fold}"
    d.mkdir(exist_ok=True)
    ids = np.arange(first_id, first_id + len(x))
    meta = {"sampling_rate": 100, "filters": {}, "kind": "signals", "units": "mV"}
    dataset.write_part(d / "signals-00000.parquet", ids, ids.astype(float), np.full(len(x), fold), x, meta)
    bmeta = {**meta, "kind": "bins", "n_bins": 5}
    dataset.write_part(
        d / "bins-00000.parquet",
        ids,
        ids.astype(float),
        np.full(len(x), fold),
        x.reshape(len(x), 12, 5, -1).mean(-1),
        bmeta,
    )


def test_train_standard_statistics_come_from_folds_1_to_8_only(tmp_path):
    rng = np.random.default_rng(0)
    mv = {}
    for fold in range(1, 11):
        # validation and test folds far off: any leak into the statistics would show
        shift = 100.0 if fold in (9, 10) else 0.0
        mv[fold] = (rng.normal(0, 1, (4, 12, 50)) * (1 + np.arange(12))[None, :, None] + shift).astype(np.float32)
        _write(tmp_path, fold, mv[fold], 100 * fold)
    stats = standardize_parts(tmp_path, SPLITS["train"])
    train = np.concatenate([mv[f] for f in SPLITS["train"]]).astype(np.float64)
    np.testing.assert_allclose(stats["mean"], train.mean(axis=(0, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats["std"], train.std(axis=(0, 2)), rtol=1e-4)
    assert stats["fitted_on_folds"] == list(SPLITS["train"]) and stats["records"] == 32
    assert json.loads((tmp_path / STATS_FILE).read_text())["mean"] == stats["mean"]
    # the model's input: training folds standardised, the test fold keeps its (large) offset
    x_train, _, _ = dataset.load_parquet_records(tmp_path, SPLITS["train"])
    assert abs(x_train.mean()) < 1e-4 and x_train.std() == pytest.approx(1, abs=0.05)
    x_test, _, _ = dataset.load_parquet_records(tmp_path, [10])
    assert x_test.mean() > 10
    # amplitude ratios between leads survive (unlike per-record z-scoring), and mV is recovered exactly
    back, _, _ = dataset.load_signals_mv(tmp_path, [10])
    np.testing.assert_allclose(back, mv[10], rtol=1e-4, atol=1e-3)
    bins, _, _ = dataset.load_parquet_records(tmp_path, [3], kind="bins")
    x3, _, _ = dataset.load_parquet_records(tmp_path, [3])
    np.testing.assert_allclose(bins, x3.reshape(4, 12, 5, -1).mean(-1), atol=1e-5)


def test_normalize_must_be_a_known_scheme():
    assert FilterSettings(normalize="train_standard").normalize == "train_standard"
    with pytest.raises(ValueError, match="normalize"):
        FilterSettings(normalize="global")
