"""PTB-XL label sets, aggregated from `scp_codes` exactly as the PTB-XL benchmark does.

Reference: Strodthoff et al. 2021, github.com/helme/ecg_ptbxl_benchmarking, `code/utils/utils.py`
(`compute_label_aggregations` and `select_data`). Its behaviour, kept here on purpose:

- every key of `scp_codes` counts, whatever its likelihood (the benchmark ignores likelihoods);
  `likelihood_min` > 0 is an option of ours, 0 reproduces the benchmark;
- `diagnostic` keeps the diagnostic statements themselves, `subdiagnostic`/`superdiagnostic`
  map them to `diagnostic_subclass`/`diagnostic_class` (NaN classes are dropped);
- `form`/`rhythm` keep the statements flagged as such, `all` keeps every statement;
- a label is kept only when it occurs in more than `min_count` records (strictly greater, as
  `counts[counts > min_samples]`); the benchmark does not apply this to `diagnostic`, nor do we;
- label order is sorted, as scikit-learn's MultiLabelBinarizer gives it.
Records with no label in a set stay in the table with an all-zero row; the loader drops them
for training and evaluation, as `select_data` does.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd

LABEL_SETS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")


def parse_scp_codes(text: str, *, where: str = "") -> dict[str, float]:
    """Parse one `scp_codes` cell, a dict literal {code: likelihood in [0, 100]}, strictly.

    Only a literal dict of string keys and plain numbers is accepted (parsed with `ast`, never
    evaluated); a repeated key, a likelihood outside 0-100, NaN or anything else is a ValueError
    naming `where`, so no odd cell is read as a silently different label set.
    """
    shown = repr(str(text)[:60]) + ("..." if len(str(text)) > 60 else "")
    try:
        node = ast.parse(str(text).strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{where}: scp_codes is not a dict literal: {shown} ({type(exc).__name__})") from None
    if not isinstance(node, ast.Dict):
        raise ValueError(f"{where}: scp_codes is not a dict literal: {shown}")
    codes: dict[str, float] = {}
    for key, value in zip(node.keys, node.values):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.strip()):
            raise ValueError(f"{where}: scp_codes key {ast.unparse(key) if key else '**'} is not a statement code")
        sign = 1.0
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
            sign, value = (-1.0 if isinstance(value.op, ast.USub) else 1.0), value.operand
        if not (
            isinstance(value, ast.Constant) and type(value.value) in (int, float) and 0 <= sign * value.value <= 100
        ):
            raise ValueError(f"{where}: scp_codes likelihood of {key.value!r} is not a number in 0-100")
        if key.value in codes:
            raise ValueError(f"{where}: scp_codes repeats {key.value!r}")
        codes[key.value] = float(sign * value.value) + 0.0  # no -0.0
    return codes


def read_statements(path: str | Path) -> pd.DataFrame:
    """Read `scp_statements.csv` (index: statement code) and check the columns we rely on."""
    df = pd.read_csv(path, index_col=0)
    needed = {"diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass", "description"}
    missing = needed - set(df.columns)
    if missing:
        raise ValueError(f"{path}: scp_statements.csv lacks columns {sorted(missing)}")
    return df


def _set_maps(statements: pd.DataFrame) -> dict[str, dict[str, str]]:
    """For each label set: statement code -> label it contributes (codes absent contribute none)."""
    diag = statements[statements.diagnostic == 1.0]
    return {
        "diagnostic": {c: c for c in diag.index},
        "subdiagnostic": {c: str(v) for c, v in diag["diagnostic_subclass"].items() if pd.notna(v)},
        "superdiagnostic": {c: str(v) for c, v in diag["diagnostic_class"].items() if pd.notna(v)},
        "form": {c: c for c in statements.index[statements.form == 1.0]},
        "rhythm": {c: c for c in statements.index[statements.rhythm == 1.0]},
    }


def _statements_per_set(codes: dict[str, float], maps: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Labels of one record in each set, before the minimum-count filter."""
    out = {"all": sorted(set(codes))}
    for label_set, mapping in maps.items():
        out[label_set] = sorted({mapping[c] for c in codes if c in mapping})
    return out


def aggregate_labels(
    scp_codes: pd.Series, statements: pd.DataFrame, *, likelihood_min: float = 0.0, min_count: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Multi-hot matrices per label set for the records in `scp_codes` (index: ecg_id).

    `scp_codes` holds dicts (already parsed). Returns ({set: uint8[n, n_labels]}, {set: names}).
    """
    maps, per_record = _set_maps(statements), []
    for codes in scp_codes:
        kept = {c: v for c, v in codes.items() if v >= likelihood_min}
        per_record.append(_statements_per_set(kept, maps))
    matrices, names = {}, {}
    for label_set in LABEL_SETS:
        lists = [r[label_set] for r in per_record]
        counts = pd.Series([c for labels in lists for c in labels], dtype=object).value_counts()
        if label_set != "diagnostic":  # the benchmark's select_data leaves diagnostic unfiltered
            counts = counts[counts > min_count]
        label_names = sorted(counts.index)
        col = {name: j for j, name in enumerate(label_names)}
        y = np.zeros((len(lists), len(label_names)), dtype=np.uint8)
        for i, labels in enumerate(lists):
            for c in labels:
                if c in col:
                    y[i, col[c]] = 1
        matrices[label_set], names[label_set] = y, label_names
    return matrices, names


def labels_table(meta: pd.DataFrame, statements: pd.DataFrame, *, likelihood_min: float = 0.0, min_count: int = 0):
    """The labels table as a pyarrow Table: ecg_id, patient_id, strat_fold, one multi-hot column
    `y_<set>` (list of uint8) per label set; label names in the schema metadata."""
    import pyarrow as pa

    matrices, names = aggregate_labels(
        meta["scp_codes"], statements, likelihood_min=likelihood_min, min_count=min_count
    )
    cols = {
        "ecg_id": pa.array(meta.index.to_numpy(dtype=np.int64)),
        "patient_id": pa.array(meta["patient_id"].to_numpy(dtype=np.float64)),
        "strat_fold": pa.array(meta["strat_fold"].to_numpy(dtype=np.int8)),
    }
    for label_set, y in matrices.items():
        # A list per record holding the multi-hot vector (a plain list: Arrow's fixed-size list
        # cannot have width 0, which an empty label set needs). Flattening needs no Python loop.
        offsets = pa.array(np.arange(len(y) + 1, dtype=np.int32) * y.shape[1])
        cols[f"y_{label_set}"] = pa.ListArray.from_arrays(offsets, pa.array(y.reshape(-1), type=pa.uint8()))
    table = pa.table(cols)
    meta_json = {"label_names": names, "likelihood_min": likelihood_min, "min_count": min_count}
    return table.replace_schema_metadata({b"ecgxai": json.dumps(meta_json).encode()})
