"""`preprocess.normalize: train_standard`: one per-lead standard scaler fitted on the training folds.

Per-record z-scoring removes a record's absolute amplitude and the amplitude ratios between its
leads, which voltage criteria (LVH, LVOLT, HVOLT) depend on. The PTB-XL benchmark instead fits
one standard scaler on the training folds; this does the same per lead: mean and standard
deviation over every sample of every record of folds 1-8 (never 9 or 10), stored beside the data
as `normalization.json`, applied to all folds. Each part keeps `lead_scale`/`lead_offset`
(= the lead's std and mean), so mV = signal * lead_scale + lead_offset holds under both schemes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ptbxl_xai.data import parquet_io as dataset
from ptbxl_xai.data.conditioning import bin_means, zscore, zscore_params
from ptbxl_xai.outputs import replace_dir

STATS_FILE = "normalization.json"


def fit_lead_stats(data_dir: str | Path, train_folds) -> dict:
    """Per-lead mean and std (mV) over every sample of the training folds' records (streamed by part)."""
    total = sq = None
    n_samples = n_records = 0
    for path in dataset.part_files(Path(data_dir), train_folds, "signals"):
        x, _, _, _ = dataset.read_part_mv(path)
        x = x.astype(np.float64)
        s, q = x.sum(axis=(0, 2)), (x**2).sum(axis=(0, 2))
        total, sq = (s, q) if total is None else (total + s, sq + q)
        n_samples += x.shape[0] * x.shape[2]
        n_records += x.shape[0]
    if not n_records:
        raise ValueError(f"{data_dir}: no records in training folds {list(train_folds)} to fit the scaler on")
    mean = total / n_samples
    std = np.sqrt(np.maximum(sq / n_samples - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return {
        "scheme": "train_standard",
        "fitted_on_folds": [int(f) for f in train_folds],
        "records": int(n_records),
        "units": "mV",
        "mean": mean.tolist(),
        "std": std.tolist(),
    }


def standardize_parts(data_dir: str | Path, train_folds) -> dict:
    """Fit the scaler on `train_folds`, rewrite every signals and bins part with it, write the stats file."""
    data_dir = Path(data_dir)
    stats = fit_lead_stats(data_dir, train_folds)
    folds = sorted(int(p.name.split("=")[1]) for p in data_dir.glob("fold=*"))
    for path in dataset.part_files(data_dir, folds, "signals"):
        x, ids, fold_col, meta = dataset.read_part_mv(path)
        z, scale, offset = standardize(x, stats)
        units = "standardised per lead (mean and std of training folds %s)" % stats["fitted_on_folds"]
        _rewrite_part(path, ids, fold_col, meta, z, scale, offset, "train_standard", units)
    (data_dir / STATS_FILE).write_text(json.dumps(stats, indent=1) + "\n")
    return stats


def zscore_parts(data_dir: str | Path) -> int:
    """Rewrite every signals and bins part z-scored per record and lead (`normalize: record`); returns records."""
    data_dir = Path(data_dir)
    n = 0
    folds = sorted(int(p.name.split("=")[1]) for p in data_dir.glob("fold=*"))
    for path in dataset.part_files(data_dir, folds, "signals"):
        x, ids, fold_col, meta = dataset.read_part_mv(path)
        scale, offset = (a.astype(np.float32) for a in zscore_params(x))
        _rewrite_part(path, ids, fold_col, meta, zscore(x), scale, offset, "record", "z-score per lead")
        n += len(ids)
    (data_dir / STATS_FILE).unlink(missing_ok=True)  # a record-normalised tree has no shared scaler
    return n


def _rewrite_part(path, ids, fold_col, meta, z, scale, offset, normalize: str, units: str) -> None:
    """Write a signals part (and its bins part) with new values and scales, its filters saying `normalize`,
    so whoever reads the part (training, the viewer, the app) knows how it was normalised."""
    patients = pq.read_table(path, columns=["patient_id"]).column(0).to_numpy()
    z = z.astype(np.float32, copy=False)

    def own(m: dict) -> dict:
        m = {k: v for k, v in m.items() if k not in ("leads", "shape", "ecgxai_version")}
        return {**m, "filters": {**m.get("filters", {}), "normalize": normalize}}

    dataset.write_part(
        path, ids, patients, fold_col, z, {**own(meta), "units": units}, lead_scale=scale, lead_offset=offset
    )
    bins_path = path.with_name(path.name.replace("signals-", "bins-"))
    if bins_path.exists():
        bmeta = own(dataset.read_metadata(bins_path))
        dataset.write_part(bins_path, ids, patients, fold_col, bin_means(z, bmeta["n_bins"]), bmeta,
                           lead_scale=scale, lead_offset=offset)  # fmt: skip


def renormalize_tree(src: str | Path, dst: str | Path, normalize: str, train_folds) -> dict:
    """`dst`: the records of the preprocessed folder `src`, normalised by `normalize` instead.

    Every part stores its scales (mV = signal * lead_scale + lead_offset), so this recovers mV and
    normalises again: no filtering is repeated and the record set is identical, which a paired
    comparison of the two normalisations needs. It equals preprocessing with `normalize` directly
    where no record was zero-padded (PTB-XL's records all last 10 s). `dst` appears complete or not at all.
    """
    from ptbxl_xai.config import NORMALIZATIONS

    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, not {normalize!r}")
    src, dst = Path(src), Path(dst)
    if not any(src.glob("fold=*/signals-*.parquet")):
        raise FileNotFoundError(f"{src}: no preprocessed signals parts to renormalise")
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    try:
        if normalize == "train_standard":
            stats = standardize_parts(tmp, train_folds)
        else:
            stats = {"scheme": "record", "records": zscore_parts(tmp)}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, dst)
    return stats


def load_lead_stats(data_dir: str | Path) -> dict:
    """The scaler that `standardize_parts` stored beside the data; every problem names the file."""
    path = Path(data_dir) / STATS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; preprocess with normalize: train_standard writes it")
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        mean, std = np.asarray(stats["mean"], np.float64), np.asarray(stats["std"], np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a train_standard scaler ({type(exc).__name__}: {exc})") from None
    if mean.ndim != 1 or mean.shape != std.shape or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError(f"{path}: mean and std must be finite per-lead lists of one length")
    if (std <= 0).any():
        raise ValueError(f"{path}: std must be > 0 for every lead")
    return stats


def standardize(x_mv: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records [..., leads, samples] in mV through the training folds' scaler, as preprocess applies it.

    Returns (standardised float32, lead_scale [..., leads], lead_offset [..., leads]) with
    mV = standardised * lead_scale + lead_offset: the scaler's std and mean.
    """
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    z = ((np.asarray(x_mv, np.float32) - mean[:, None]) / std[:, None]).astype(np.float32)
    shape = z.shape[:-1]
    return z, np.broadcast_to(std, shape).copy(), np.broadcast_to(mean, shape).copy()


def training_scaler(data_dir: str | Path, settings) -> dict | None:
    """The scaler a new record needs under `settings` (FilterSettings): the stored one for train_standard,
    None for per-record z-scoring (each record is its own scaler)."""
    if settings.zscore and getattr(settings, "normalize", "record") == "train_standard":
        return load_lead_stats(data_dir)
    return None
