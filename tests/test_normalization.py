"""preprocess.normalize: train_standard fits its per-lead scaler on folds 1-8 only and keeps mV recoverable."""

import json

import numpy as np
import pytest

from ptbxl_xai.config import SPLITS, FilterSettings
from ptbxl_xai.data import parquet_io as dataset
from ptbxl_xai.data.normalization import STATS_FILE, standardize_parts


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


@pytest.mark.parametrize("built, wanted", [("record", "train_standard"), ("train_standard", "record")])
def test_renormalised_tree_equals_preprocessing_with_the_other_scheme(tiny_ptbxl, tmp_path, built, wanted):
    """What an ablation variant with its own `normalize` trains on (rule renormalize) is what preprocessing
    with that scheme writes: same records, same values, filters metadata and scaler file to match."""
    from ptbxl_xai.data.normalization import renormalize_tree
    from ptbxl_xai.data.preprocess import preprocess

    def prep(scheme):
        out = tmp_path / scheme
        settings = FilterSettings(rate=100, normalize=scheme)
        preprocess(tiny_ptbxl, out / "100hz", out / "labels.parquet", out / "quality.tsv", settings, progress=False)
        return out / "100hz"

    source, direct = prep(built), prep(wanted)
    derived = tmp_path / "derived"
    renormalize_tree(source, derived, wanted, SPLITS["train"])
    for kind in ("signals", "bins"):
        a, ids_a, meta_a = dataset.load_parquet_records(direct, range(1, 11), kind=kind)
        b, ids_b, meta_b = dataset.load_parquet_records(derived, range(1, 11), kind=kind)
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_allclose(b, a, atol=2e-4)
        assert meta_b["filters"] == meta_a["filters"] and meta_b["filters"]["normalize"] == wanted
        assert meta_b["units"] == meta_a["units"]
    np.testing.assert_allclose(
        dataset.load_signals_mv(derived, [10])[0], dataset.load_signals_mv(direct, [10])[0], atol=1e-4
    )
    assert (derived / STATS_FILE).exists() == (wanted == "train_standard")
    if wanted == "train_standard":
        a, b = (json.loads((d / STATS_FILE).read_text()) for d in (direct, derived))
        np.testing.assert_allclose(b["mean"], a["mean"], atol=1e-5)
        np.testing.assert_allclose(b["std"], a["std"], rtol=1e-5)
        assert b["fitted_on_folds"] == list(SPLITS["train"])
    assert not (tmp_path / "derived.tmp").exists() and (source / "fold=1").is_dir()  # source untouched


def test_renormalise_refuses_an_unknown_scheme_or_an_empty_source(tmp_path):
    from ptbxl_xai.data.normalization import renormalize_tree

    (tmp_path / "src").mkdir()
    with pytest.raises(ValueError, match="normalize must be one of"):
        renormalize_tree(tmp_path / "src", tmp_path / "dst", "global", SPLITS["train"])
    with pytest.raises(FileNotFoundError, match="src: no preprocessed signals"):
        renormalize_tree(tmp_path / "src", tmp_path / "dst", "record", SPLITS["train"])
    assert not (tmp_path / "dst").exists()


def test_a_run_reads_the_data_of_its_own_normalisation():
    from ptbxl_xai.config import data_path, expand_runs

    ablation = {
        "label_set": "superdiagnostic", "seeds": [0], "grid": ["hybrid", "hybrid_train_standard"],
        "variants": {"hybrid": {}, "hybrid_train_standard": {"normalize": "train_standard"}},
    }  # fmt: skip
    config = {"preprocess": {"sampling_rate": 100, "zscore": True, "normalize": "record"}, "ablation": ablation,
              "runs": {"main": {}, "std": {"normalize": "train_standard"}, "same": {"normalize": "record"}}}  # fmt: skip
    assert data_path(config, "main") == data_path(config, "same") == data_path(config) == "results/data/100hz"
    assert data_path(config, "std") == "results/data/100hz-train_standard"
    assert expand_runs(ablation)["abl-hybrid_train_standard-s0"]["normalize"] == "train_standard"
    # the app reads the config file as written, where ablation runs are not under `runs`
    assert data_path(config, "abl-hybrid_train_standard-s0", results="r") == "r/data/100hz-train_standard"
    assert data_path(config, "abl-hybrid-s0") == "results/data/100hz"
    config["preprocess"]["zscore"] = False
    with pytest.raises(ValueError, match="run 'std' sets normalize: train_standard, which needs preprocess.zscore"):
        data_path(config, "std")
