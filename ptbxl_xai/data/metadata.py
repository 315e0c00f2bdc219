"""Reading ptbxl_database.csv row by row: a bad row is quarantined with a reason, never a stop.

Every field preprocessing uses is parsed strictly: `ecg_id` (a positive integer, unique),
`patient_id` (a non-negative number), `strat_fold` (an integer 1-10), `scp_codes` (a dict of
known statement codes with likelihoods in 0-100) and the record file name (a relative path
inside `records100/` or `records500/` naming the row's own ecg_id). A row failing any of them
becomes a quality row naming the ecg_id (or the CSV line where the id itself is unusable) and
the reason. Only a table that cannot be read as such (no such file, missing columns) is an
error for the whole run.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path, PurePosixPath

import pandas as pd

from ptbxl_xai.data.labels import parse_scp_codes
from ptbxl_xai.data.ptbxl import DATABASE_CSV, RATES


class InputError(ValueError):
    """The PTB-XL folder itself is unusable (missing or malformed tables)."""


_INTEGRAL = re.compile(r"[+]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_RECORD_NAME = re.compile(r"0*(\d+)_[lh]r")
_FOLDER_NAME = re.compile(r"[A-Za-z0-9_-]+")  # PTB-XL: records100/00000/...; no quotes or spaces


def _integral(text: str) -> int | None:
    text = text.strip()
    return int(text.lstrip("+").split(".")[0]) if _INTEGRAL.fullmatch(text) else None


def _check_row(row: dict, rate: int, known_codes: set[str] | None) -> tuple[int, float, int, dict, str]:
    """(ecg_id, patient_id, strat_fold, scp_codes, record path) of one row; ValueError otherwise."""
    ecg_id = _integral(row["ecg_id"])
    patient = row["patient_id"].strip()
    if not _NUMBER.fullmatch(patient) or not math.isfinite(float(patient)):
        raise ValueError(f"patient_id {row['patient_id']!r} is not a non-negative number")
    fold = _integral(row["strat_fold"])
    if fold is None or not 1 <= fold <= 10:
        raise ValueError(f"strat_fold {row['strat_fold']!r} is not an integer in 1-10")
    try:
        codes = parse_scp_codes(row["scp_codes"], where="row")
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("row: ")) from None
    unknown = sorted(set(codes) - known_codes) if known_codes is not None else []
    if unknown:
        raise ValueError(f"scp_codes names statement(s) {unknown} absent from scp_statements.csv")
    folder, column = RATES[rate]
    rel = row[column].strip()
    parts = PurePosixPath(rel).parts
    name = _RECORD_NAME.fullmatch(parts[-1]) if parts else None
    if (
        "\\" in rel
        or len(parts) < 2
        or parts[0] != folder
        or not all(_FOLDER_NAME.fullmatch(p) for p in parts[:-1])
        or not name
        or int(name.group(1)) != ecg_id
    ):
        raise ValueError(f"{column} {row[column]!r} is not {folder}/.../{ecg_id:05d}_{'lr' if rate == 100 else 'hr'}")
    return ecg_id, float(patient), fold, codes, rel


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of each non-empty CSV row.

    CRLF becomes LF and a lone CR a space (pandas writes a CR inside a field unquoted, which
    every CSV reader then takes for a line end). Where the file is not valid CSV as a whole (an
    unclosed quote swallowing the rest), each line is parsed on its own, so one bad line costs
    one row.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", " ").replace("\x00", "\ufffd")
    try:
        reader = csv.reader(io.StringIO(text), strict=True)
        rows = [(reader.line_num, fields) for fields in reader]
    except csv.Error:
        rows = []
        for line, text_line in enumerate(text.split("\n"), start=1):
            try:
                rows += [(line, fields) for fields in csv.reader([text_line], strict=True)]
            except csv.Error:
                rows.append((line, [text_line]))  # quarantined below for its field count
    rows = [(line, fields) for line, fields in rows if fields]
    if not rows:
        return [], []
    return [h.strip() for h in rows[0][1]], rows[1:]


def read_database(root: Path, rate: int, known_codes: set[str] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Usable rows of ptbxl_database.csv (index ecg_id; patient_id float, strat_fold int, scp_codes
    dict, the record column a path; other columns as text), and quality rows for the others."""
    path = Path(root) / DATABASE_CSV
    if not path.is_file():
        raise InputError(f"{path}: not found; is {root} a PTB-XL folder?")
    column = RATES[rate][1]
    try:
        header, lines = _read_rows(path)
    except OSError as exc:
        raise InputError(f"{path}: unreadable: {exc.strerror or exc}") from None
    needed = {"ecg_id", "patient_id", "scp_codes", "strat_fold", column}
    missing = needed - set(header)
    if missing:
        raise InputError(f"{path}: missing column(s) {sorted(missing)}")
    if len(set(header)) != len(header):
        raise InputError(f"{path}: repeated column name(s) in the header {header}")

    bad: list[dict] = []

    def quarantine(ecg_id, fold, where: str, reason: str) -> None:
        fold = _integral(str(fold))
        bad.append(
            {
                "ecg_id": ecg_id,
                "strat_fold": fold if fold is not None and 1 <= fold <= 10 else None,
                "record": where,
                "kind": "bad metadata",
                "reason": f"bad metadata row: {reason}",
            }
        )

    table = []
    for line, fields in lines:
        if len(fields) != len(header):
            first = _integral(fields[0]) if fields else None
            where = f"{DATABASE_CSV} line {line}"
            quarantine(first, None, where, f"{len(fields)} fields where the header has {len(header)}")
        else:
            table.append((line, dict(zip(header, fields))))
    ids = [_integral(row["ecg_id"]) for _, row in table]
    counts = pd.Series([i for i in ids if i is not None], dtype="int64").value_counts()
    rows, index = [], []
    for ecg_id, (line, row) in zip(ids, table):
        if ecg_id is None or ecg_id < 1:
            quarantine(None, row["strat_fold"], f"{DATABASE_CSV} line {line}", f"ecg_id {row['ecg_id']!r}")
            continue
        if counts[ecg_id] > 1:
            quarantine(ecg_id, row["strat_fold"], "", f"ecg_id {ecg_id} appears {counts[ecg_id]} times")
            continue
        try:
            _, patient, fold, codes, rel = _check_row(row, rate, known_codes)
        except ValueError as exc:
            quarantine(ecg_id, row["strat_fold"], "", str(exc))
            continue
        rows.append({**row, "patient_id": patient, "strat_fold": fold, "scp_codes": codes, column: rel})
        index.append(ecg_id)
    meta = pd.DataFrame(rows, index=pd.Index(index, name="ecg_id", dtype="int64"), columns=header)
    meta = meta.drop(columns="ecg_id")
    meta["patient_id"] = meta["patient_id"].astype(float)
    meta["strat_fold"] = meta["strat_fold"].astype(int)
    return meta.sort_index(), bad
