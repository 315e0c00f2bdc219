"""Prediction tables: per record, true labels, probabilities and the model's attention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

META_KEY = b"ecgxai"


def _matrix_column(a: np.ndarray, type_) -> pa.Array:
    n, width = a.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(a).reshape(-1), type=type_))


def write_predictions(
    path: str | Path, ecg_ids, y_true, probs, attention, label_names, meta: dict, test_fold=None
) -> None:
    """One row per record: ecg_id, y_true (uint8 list), prob (float32 list), attention (float32 list),
    and, for pooled cross-validation predictions, test_fold (which fold's model predicted it)."""
    columns = {
        "ecg_id": pa.array(np.asarray(ecg_ids, dtype=np.int64)),
        "y_true": _matrix_column(np.asarray(y_true, dtype=np.uint8), pa.uint8()),
        "prob": _matrix_column(np.asarray(probs, dtype=np.float32), pa.float32()),
        "attention": _matrix_column(np.asarray(attention, dtype=np.float32), pa.float32()),
    }
    if test_fold is not None:
        columns["test_fold"] = pa.array(np.asarray(test_fold, dtype=np.int64))
    table = pa.table(columns)
    full = {**meta, "label_names": list(label_names)}
    table = table.replace_schema_metadata({META_KEY: json.dumps(full).encode()})
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_predictions(path: str | Path) -> dict:
    """{ecg_id, y_true, prob, attention[, test_fold]: arrays; label_names; meta} from a prediction table."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    n = table.num_rows
    out = {"ecg_id": table.column("ecg_id").to_numpy(), "label_names": meta["label_names"], "meta": meta}
    for col in ("y_true", "prob", "attention"):
        flat = table.column(col).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[col] = flat.reshape(n, -1) if n else flat.reshape(0, 0)
    if "test_fold" in table.column_names:
        out["test_fold"] = table.column("test_fold").to_numpy()
    return out
