"""Writing result files: whole or not at all (temporary name, then rename), TSVs at a reading precision.

A TSV is what a person opens, so its floats carry 4 significant digits (or 4 decimals from 1 up), without
float noise such as 0.4699999999999999; exact values stay in the Parquet files and in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

SIGNIFICANT_DIGITS = 4


def reading_precision(value: float) -> str:
    """0.912345 -> '0.9123', 0.000123456 -> '0.0001235', 21799.0 -> '21799', 123.45678 -> '123.4568'."""
    if not np.isfinite(value):
        return str(value)
    fractional = bool(abs(value) >= 1)  # from 1 up: 4 decimals, so counts and seconds keep their integer digits
    return np.format_float_positional(value, precision=SIGNIFICANT_DIGITS, fractional=fractional, trim="-")


def _atomic(path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    return _atomic(path, lambda f: f.write(text))


def write_json(path, obj) -> Path:
    return _atomic(path, lambda f: f.write(json.dumps(obj, indent=1) + "\n"))


def write_tsv(df, path) -> Path:
    """A table with a header, tab-separated, floats at reading precision (pandas.DataFrame.to_csv)."""
    return _atomic(path, lambda f: df.to_csv(f, sep="\t", index=False, float_format=reading_precision))


def replace_dir(tmp, final) -> Path:
    """Put a finished folder `tmp` in place of `final`: the old one is moved aside first and removed only
    once the new one is in place, so an interruption never leaves a half-written `final`."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    return final
