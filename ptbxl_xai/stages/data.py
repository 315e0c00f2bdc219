"""The data stages: acquire PTB-XL, preprocess it into Parquet folds, renormalise them, delineate the beats.

Each calls the engine of its `ptbxl_xai.data` module (which processes parts in parallel and writes its folder
atomically) and writes what the rule declares besides; the workflow script logs the summary returned.
Nothing here needs more than the data environment (envs/data.yaml).
"""

from __future__ import annotations

import logging

import pandas as pd

from ptbxl_xai.config import FilterSettings
from ptbxl_xai.data.acquire import acquire as make_available
from ptbxl_xai.data.delineation import delineate as delineate_folder
from ptbxl_xai.data.normalization import renormalize_tree
from ptbxl_xai.data.preprocess import preprocess as preprocess_folder
from ptbxl_xai.outputs import write_json

log = logging.getLogger(__name__)


def acquire(*, manifest, settings: dict, data: dict, rate: int, threads: int = 1) -> dict:
    """Download, generate or check the PTB-XL folder of `settings` (the config's whole data section, with the
    download knobs) at `rate` Hz; write the manifest, with `data` (the section's identity) in it. Returns it."""
    out = make_available(data_cfg=settings, rate=rate, threads=threads)
    out["data"] = data
    write_json(manifest, out)
    return out


def preprocess(
    *,
    root,
    signals,
    labels,
    quality,
    filters: dict,
    part_size: int,
    likelihood_min: float,
    min_count: int,
    threads: int = 1,
) -> pd.DataFrame:
    """The PTB-XL folder `root` (the one the acquire stage's manifest describes) -> the Parquet folds `signals`,
    the labels table and the quality report; returns records kept and quarantined per fold."""
    return preprocess_folder(
        root=root,
        out_dir=signals,
        labels_path=labels,
        quality_path=quality,
        settings=FilterSettings(**filters),
        workers=threads,
        part_size=part_size,
        likelihood_min=likelihood_min,
        min_count=min_count,
    )


def renormalize(*, signals, out_signals, normalize: str, train_folds) -> dict:
    """`out_signals`: the preprocessed records of `signals` under the normalisation `normalize` instead
    (`ptbxl_xai.data.normalization.renormalize_tree`); returns the scaler's summary (`records`, ...)."""
    return renormalize_tree(signals, out_signals, normalize, train_folds=train_folds)


def delineate(*, signals, beats, method: str, threads: int = 1) -> pd.DataFrame:
    """Beats with global P/QRS/T boundaries of every preprocessed record of `signals`, into the folder `beats`
    (with its per-record summary, which is returned)."""
    return delineate_folder(data_dir=signals, out_dir=beats, method=method, workers=threads)
