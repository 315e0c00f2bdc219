"""What every reported number stands on: data source, records, labels, split; and comparability.

A metric without its context misleads: 111 test records of a partial copy are not the
benchmark's 2,158. `run_context` collects the facts once, the evaluate stage writes them beside
every metrics table, and the tables and captions repeat them. Published PTB-XL figures are
comparable only with a run on the complete, checksum-verified PTB-XL (data.source physionet,
every file checked against SHA256SUMS.txt by the acquire stage, all 21,799 records used).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ptbxl_xai.data.parquet_io import read_labels

PTBXL_RECORDS = 21_799  # PTB-XL v1.0.3
CONTEXT_COLUMNS = [
    "run",
    "architecture",
    "data_source",
    "records_used",
    "records_of_ptbxl",
    "test_records",
    "label_set",
    "labels_in_set",
    "labels_with_test_positives",
    "split",
    "published_comparable",
    "comparability_note",
]

SOURCES = {
    "physionet": "PTB-XL v1.0.3 from PhysioNet, SHA-256 checked",
    "local": "local PTB-XL folder, not checksum-verified",
    "synthetic": "synthetic PTB-XL-shaped data",
}


def split_description(scheme: str, test_folds=None) -> str:
    if scheme == "crossval":
        return "10-fold cross-validation, pooled out-of-fold predictions (model k: test fold k, validation k+1)"
    folds = ",".join(str(int(f)) for f in (test_folds or [10]))
    return f"holdout: train folds 1-8, validation fold 9, test fold {folds}"


def run_context(
    manifest: dict,
    labels_path: str | Path,
    label_set: str,
    y_test: np.ndarray,
    scheme: str,
    run: str = "",
    architecture: str = "hybrid",
) -> dict:
    """The context row of one evaluated run (CONTEXT_COLUMNS)."""
    _, y_all, names = read_labels(labels_path, label_set)
    used = int((y_all > 0).any(axis=1).sum())  # records with a label in the set, as training keeps them
    y_test = np.asarray(y_test) > 0
    pos = y_test.sum(0)
    source = str(manifest.get("source", "unknown"))
    reasons = []
    if source != "physionet":
        reasons.append(f"data source {source} ({SOURCES.get(source, 'unknown')})")
    n_rows = pq.ParquetFile(labels_path).metadata.num_rows
    if n_rows < PTBXL_RECORDS:
        reasons.append(f"{n_rows:,} of {PTBXL_RECORDS:,} PTB-XL records labelled here")
    if scheme != "holdout":
        reasons.append("cross-validation, not the benchmark's fold-10 test")
    return {
        "run": run,
        "architecture": architecture,
        "data_source": f"{source}: {SOURCES.get(source, 'unknown source')}",
        "records_used": used,
        "records_of_ptbxl": PTBXL_RECORDS,
        "test_records": int(len(y_test)),
        "label_set": label_set,
        "labels_in_set": len(names),
        "labels_with_test_positives": int(((pos > 0) & (pos < len(y_test))).sum()),
        "split": split_description(scheme),
        "published_comparable": not reasons,
        "comparability_note": "complete, checksum-verified PTB-XL"
        if not reasons
        else "not comparable: " + "; ".join(reasons),
    }


def read_manifest(path) -> dict:
    with open(path) as f:
        return json.load(f)


def context_sentence(ctx: dict) -> str:
    """One line for captions and titles: source, records, labels, split."""
    return (
        f"{ctx['data_source']}; {ctx['records_used']:,} of {ctx['records_of_ptbxl']:,} PTB-XL records used, "
        f"{ctx['test_records']:,} test records; label set {ctx['label_set']}: {ctx['labels_in_set']} labels, "
        f"{ctx['labels_with_test_positives']} with test positives; {ctx['split']}"
    )


def with_context(table, ctx: dict):
    """The table with the context columns appended (the same value on every row)."""
    out = table.copy()
    for key in CONTEXT_COLUMNS:
        out[key] = ctx[key]
    return out
