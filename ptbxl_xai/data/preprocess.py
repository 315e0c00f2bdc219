"""PTB-XL folder -> Parquet folds, labels table and quality report.

Records are processed in parts of `part_size` records, one part per worker process at a time,
so peak memory is bounded by `workers x part` and not by the dataset. Unusable records are
quarantined with a reason instead of stopping the run. Everything is written under temporary
names and renamed at the end, so an interrupted run never leaves half an output behind.
"""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ptbxl_xai.data import conditioning as signal
from ptbxl_xai.data import parquet_io as dataset
from ptbxl_xai.data.labels import labels_table, read_statements
from ptbxl_xai.data.metadata import InputError, read_database
from ptbxl_xai.data.ptbxl import DATABASE_CSV, LEADS, RATES, STATEMENTS_CSV
from ptbxl_xai.data.wfdb_io import RecordError, read_wfdb_record
from ptbxl_xai.outputs import replace_dir, write_tsv
from ptbxl_xai.tempdirs import owned_temp, remove_stale

log = logging.getLogger(__name__)

QUALITY_COLUMNS = ["ecg_id", "strat_fold", "record", "kind", "reason"]


@dataclass
class PartResult:
    kept: list[int] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)
    n: int = 0


def process_part(
    root: str,
    rows: list[tuple[int, float, int, str]],
    fold: int,
    index: int,
    settings: signal.FilterSettings,
    out_dir: str,
) -> PartResult:
    """Read, check and condition one part of records, and write its two Parquet files."""
    result, signals, meta_rows = PartResult(n=len(rows)), [], []
    for ecg_id, patient_id, strat_fold, rel in rows:
        try:
            x = read_wfdb_record(Path(root, rel), rate=settings.rate, min_samples=settings.min_samples)
            flat = signal.flat_leads(x[None])[0]
            if flat.any():
                raise RecordError("flat lead", "flat lead(s) " + ",".join(np.asarray(LEADS)[flat]))
        except RecordError as exc:
            result.quality.append(
                {"ecg_id": ecg_id, "strat_fold": strat_fold, "record": rel, "kind": exc.kind, "reason": str(exc)}
            )
            continue
        except Exception as exc:  # a reader bug must cost one record, not the run; traceback to the log
            log.exception("%s: unexpected error", rel)
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            result.quality.append(
                {
                    "ecg_id": ecg_id,
                    "strat_fold": strat_fold,
                    "record": rel,
                    "kind": "unexpected error",
                    "reason": reason,
                }
            )
            continue
        signals.append(x)
        meta_rows.append((ecg_id, patient_id, strat_fold))
    if not signals:
        return result
    n_leads = signals[0].shape[0]
    conditioned = np.empty((len(signals), n_leads, settings.samples), dtype=np.float32)
    scale = np.empty((len(signals), n_leads), dtype=np.float32)
    offset = np.empty((len(signals), n_leads), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for i, x in enumerate(signals):
        by_length.setdefault(x.shape[-1], []).append(i)
    for idx in by_length.values():  # records of one length are filtered in one vectorised call
        conditioned[idx], scale[idx], offset[idx] = signal.condition_scaled(
            np.stack([signals[i] for i in idx]), settings
        )
    ids, patients, folds = (list(c) for c in zip(*meta_rows))
    meta = {"sampling_rate": settings.rate, "filters": settings.as_dict()}
    fold_dir = Path(out_dir, f"fold={fold}")
    fold_dir.mkdir(parents=True, exist_ok=True)
    dataset.write_part(
        fold_dir / f"signals-{index:05d}.parquet",
        ids,
        patients,
        folds,
        conditioned,
        {
            **meta,
            "kind": "signals",
            "units": ("z-score per lead" if settings.normalize == "record" else "mV (standardised below)")
            if settings.zscore
            else "mV",
        },
        lead_scale=scale,
        lead_offset=offset,
    )
    dataset.write_part(
        fold_dir / f"bins-{index:05d}.parquet",
        ids,
        patients,
        folds,
        signal.bin_means(conditioned, settings.n_bins),
        {**meta, "kind": "bins", "n_bins": settings.n_bins, "units": "window mean of the conditioned signal"},
        lead_scale=scale,
        lead_offset=offset,
    )
    result.kept = ids
    return result


def preprocess(
    root: str | Path,
    out_dir: str | Path,
    labels_path: str | Path,
    quality_path: str | Path,
    settings: signal.FilterSettings,
    *,
    workers: int = 1,
    part_size: int = 500,
    likelihood_min: float = 0.0,
    min_count: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Preprocess the PTB-XL folder `root`; returns a per-fold summary (kept, quarantined)."""
    root, out_dir = Path(root), Path(out_dir)
    labels_path, quality_path = Path(labels_path), Path(quality_path)
    statements_path = root / STATEMENTS_CSV
    if not statements_path.is_file():
        raise InputError(f"{statements_path}: not found; is {root} a PTB-XL folder?")
    statements = read_statements(statements_path)
    meta, quality = read_database(root, settings.rate, known_codes=set(statements.index))
    column = RATES[settings.rate][1]
    log.info(
        "%s: %d metadata rows, %d unusable as such; %d Hz records from column %s",
        root / DATABASE_CSV,
        len(meta) + len(quality),
        len(quality),
        settings.rate,
        column,
    )

    for stale in remove_stale(out_dir, "tmp"):  # a killed run's half-written parts
        log.info("removed %s, left by a run that no longer exists", stale)
    tmp_dir = owned_temp(out_dir, "tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    tasks = []
    for fold, group in meta.groupby("strat_fold", sort=True):
        rows = list(
            zip(
                group.index.astype(int),
                group["patient_id"].astype(float),
                group["strat_fold"].astype(int),
                group[column].astype(str),
            )
        )
        for start in range(0, len(rows), part_size):
            tasks.append(
                (str(root), rows[start : start + part_size], int(fold), start // part_size, settings, str(tmp_dir))
            )

    kept: list[int] = []
    bar = tqdm(total=len(meta), unit="rec", desc="preprocess", disable=not progress, mininterval=5)
    try:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(process_part, *t) for t in tasks]
                results = []
                for fut in futures:  # in submission order: deterministic outputs
                    results.append(fut.result())
                    bar.update(results[-1].n)
        else:
            results = []
            for t in tasks:
                results.append(process_part(*t))
                bar.update(results[-1].n)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    finally:
        bar.close()
    for r in results:
        kept += r.kept
        quality += r.quality

    if settings.zscore and settings.normalize == "train_standard":
        from ptbxl_xai.config import SPLITS
        from ptbxl_xai.data.normalization import standardize_parts

        stats = standardize_parts(tmp_dir, SPLITS["train"])
        log.info("train_standard: per-lead scaler fitted on folds %s (%d records)", SPLITS["train"], stats["records"])
    kept_meta = meta.loc[sorted(kept)]
    table = labels_table(kept_meta, statements, likelihood_min=likelihood_min, min_count=min_count)
    quality_df = pd.DataFrame(quality, columns=QUALITY_COLUMNS).sort_values("ecg_id", kind="stable")

    labels_path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq

    tmp_labels = labels_path.with_name(labels_path.name + ".tmp")
    pq.write_table(table, tmp_labels)
    replace_dir(tmp_dir, out_dir)
    tmp_labels.replace(labels_path)
    write_tsv(quality_df, quality_path)

    summary = (
        pd.DataFrame(
            {
                "kept": kept_meta.groupby("strat_fold").size(),
                "quarantined": pd.to_numeric(quality_df["strat_fold"], errors="coerce")
                .dropna()
                .astype(int)
                .value_counts(),
            }
        )
        .fillna(0)
        .astype(int)
        .rename_axis("strat_fold")
        .reset_index()
    )
    log.info("kept %d records, quarantined %d (see %s)", len(kept_meta), len(quality_df), quality_path)
    for kind, n in quality_df["kind"].value_counts().items():
        log.info("  quarantined for %s: %d", kind, n)
    return summary
