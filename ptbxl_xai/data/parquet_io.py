"""The Parquet data contract: writing record parts and loading folds as contiguous arrays.

Layout under `results/data/{rate}hz/`: `fold=K/signals-NNNNN.parquet` (one row per record:
`ecg_id`, `patient_id`, `strat_fold`, `signal` as a fixed-size list of float32 holding
leads x samples, row-major) and beside it `fold=K/bins-NNNNN.parquet` (same rows, `signal`
holding leads x n_bins window means). A fixed-size list column flattens into one float32
buffer, so a fold loads with one reshape and no Python loop per record. Both kinds carry
`lead_scale` and `lead_offset` (float32[leads]): mV = signal * lead_scale + lead_offset (the
per-lead z-score's std and mean; 1 and 0 when preprocessing does not z-score), read by
`load_signals_mv`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ptbxl_xai import __version__
from ptbxl_xai.data.labels import LABEL_SETS
from ptbxl_xai.data.ptbxl import LEADS

KINDS = ("signals", "bins")
META_KEY = b"ecgxai"


def _fixed_size(x: np.ndarray, size: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(x, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, size)


def _to_numpy(column: pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    return column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(shape)


def write_part(
    path: Path,
    ecg_ids,
    patient_ids,
    folds,
    x: np.ndarray,
    meta: dict,
    *,
    lead_scale: np.ndarray | None = None,
    lead_offset: np.ndarray | None = None,
) -> None:
    """Write records [n, leads, width] to `path` atomically (temp name, then rename).

    `lead_scale`/`lead_offset` [n, leads] map the values back to mV (default 1 and 0: x is mV).
    """
    n, leads, width = x.shape
    scale = np.ones((n, leads), np.float32) if lead_scale is None else np.asarray(lead_scale, np.float32)
    offset = np.zeros((n, leads), np.float32) if lead_offset is None else np.asarray(lead_offset, np.float32)
    if scale.shape != (n, leads) or offset.shape != (n, leads):
        raise ValueError(f"lead_scale/lead_offset must be {(n, leads)}, not {scale.shape}/{offset.shape}")
    table = pa.table(
        {
            "ecg_id": pa.array(np.asarray(ecg_ids, dtype=np.int64)),
            "patient_id": pa.array(np.asarray(patient_ids, dtype=np.float64)),
            "strat_fold": pa.array(np.asarray(folds, dtype=np.int8)),
            "signal": _fixed_size(x, leads * width),
            "lead_scale": _fixed_size(scale, leads),
            "lead_offset": _fixed_size(offset, leads),
        }
    )
    full_meta = {**meta, "leads": list(LEADS), "shape": [leads, width], "ecgxai_version": __version__}
    table = table.replace_schema_metadata({META_KEY: json.dumps(full_meta).encode()})
    tmp = path.with_name(path.name + ".tmp")
    # Dictionaries and statistics of float noise cost 3x the write time for nothing.
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        compression_level=1,
        use_dictionary=False,
        write_statistics=["ecg_id", "strat_fold"],
    )
    tmp.replace(path)


def read_metadata(path: Path) -> dict:
    """The workflow's metadata (key `ecgxai`: rate, leads, filters, version, ...) stored in a part's schema."""
    return json.loads(pq.read_schema(path).metadata[META_KEY])


def part_files(data_dir: Path, folds, kind: str = "signals") -> list[Path]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    files = []
    for fold in folds:
        files += sorted(Path(data_dir, f"fold={int(fold)}").glob(f"{kind}-*.parquet"))
    return files


def load_parquet_records(data_dir: str | Path, folds, kind: str = "signals") -> tuple[np.ndarray, np.ndarray, dict]:
    """(X float32 [n, leads, width], ecg_ids int64 [n], metadata) for `folds`, sorted by ecg_id."""
    files = part_files(Path(data_dir), folds, kind)
    if not files:
        raise FileNotFoundError(f"{data_dir}: no {kind} parts for folds {list(folds)}")
    meta = read_metadata(files[0])
    table = pa.concat_tables([pq.read_table(f) for f in files])
    leads, width = meta["shape"]
    ids = table.column("ecg_id").to_numpy()
    values = table.column("signal").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    x = values.reshape(len(ids), leads, width)
    order = np.argsort(ids, kind="stable")
    if not np.all(order == np.arange(len(ids))):
        x, ids = x[order], ids[order]
    return x, ids, meta


def read_part_mv(path: str | Path, ecg_ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """One part in mV: (X float32 [n, leads, width] in mV, ecg_ids int64, strat_fold int8, metadata).

    `ecg_ids` restricts the rows read (a pyarrow filter, so other rows are not decoded).
    """
    meta = read_metadata(Path(path))
    filters = None if ecg_ids is None else [("ecg_id", "in", [int(i) for i in ecg_ids])]
    table = pq.read_table(path, filters=filters)
    leads, width = meta["shape"]
    ids = table.column("ecg_id").to_numpy()
    x = _to_numpy(table.column("signal"), (len(ids), leads, width))
    if "lead_scale" not in table.column_names:
        raise ValueError(f"{path}: no lead_scale/lead_offset columns; rerun preprocess to read it in mV")
    scale = _to_numpy(table.column("lead_scale"), (len(ids), leads))
    offset = _to_numpy(table.column("lead_offset"), (len(ids), leads))
    mv = (x * scale[..., None] + offset[..., None]).astype(np.float32, copy=False)
    return mv, ids, table.column("strat_fold").to_numpy(), {**meta, "units": "mV"}


def load_signals_mv(data_dir: str | Path, folds, ecg_ids=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(X float32 [n, leads, samples] in mV, ecg_ids int64 [n], metadata) for `folds`, sorted by ecg_id.

    The filtered signals as a person reads them (the model sees the z-scored `signal`);
    `ecg_ids` limits the records read.
    """
    files = part_files(Path(data_dir), folds, "signals")
    if not files:
        raise FileNotFoundError(f"{data_dir}: no signals parts for folds {list(folds)}")
    parts = [read_part_mv(f, ecg_ids) for f in files]
    meta = parts[0][3]
    leads, width = meta["shape"]
    x = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, leads, width), np.float32)
    ids = np.concatenate([p[1] for p in parts])
    order = np.argsort(ids, kind="stable")
    return x[order], ids[order], meta


def read_labels(labels_path: str | Path, label_set: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(ecg_ids [n], Y uint8 [n, n_labels], label names) from the labels table."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"label set must be one of {LABEL_SETS}, not {label_set!r}")
    table = pq.read_table(labels_path, columns=["ecg_id", f"y_{label_set}"])
    names = json.loads(table.schema.metadata[META_KEY])["label_names"][label_set]
    ids = table.column("ecg_id").to_numpy()
    flat = table.column(f"y_{label_set}").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.reshape(len(ids), len(names)).astype(np.uint8), names


def load_fold_arrays(
    data_dir, labels_path, folds, label_set: str, *, kind: str = "signals", drop_unlabelled: bool = True
):
    """The training/evaluation view: (X [n, 12, width], Y [n, n_labels], ecg_ids, label names).

    Records with no label in `label_set` are dropped by default, as the PTB-XL benchmark does.
    """
    x, ids, _ = load_parquet_records(data_dir, folds, kind)
    label_ids, y_all, names = read_labels(labels_path, label_set)
    pos = np.searchsorted(label_ids, ids)
    pos = np.clip(pos, 0, len(label_ids) - 1)
    if len(label_ids) == 0 or not np.all(label_ids[pos] == ids):
        raise ValueError(f"{labels_path}: labels missing for some records of {data_dir}")
    y = y_all[pos]
    if drop_unlabelled:
        keep = y.any(axis=1)
        x, y, ids = x[keep], y[keep], ids[keep]
    return x, y, ids, names


def lead_calibration(data_dir, folds, ids) -> tuple[np.ndarray, np.ndarray] | None:
    """(lead_scale, lead_offset) [n, 12] for `ids` from the signals Parquet (mV = signal * scale +
    offset), or None where the parts predate those columns."""
    files = part_files(Path(data_dir), folds, "signals")
    if not files or "lead_scale" not in pq.read_schema(files[0]).names:
        return None
    table = pa.concat_tables([pq.read_table(f, columns=["ecg_id", "lead_scale", "lead_offset"]) for f in files])
    order = {int(e): i for i, e in enumerate(table.column("ecg_id").to_numpy())}
    rows = np.array([order[int(e)] for e in ids])
    n = table.num_rows

    def column(name):
        return table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(n, -1)[rows]

    return column("lead_scale"), column("lead_offset")
