"""Property-based tests: no header token and no metadata field can stop preprocessing.

Real PTB-XL records and rows (tests/fixtures) are mutated one token or field at a time. For each
mutant exactly one of two things may happen: the record/row is kept with the values its (mutated)
text means, or it is quarantined with a reason that names it. No exception escapes, and no value
is silently different.
"""

from __future__ import annotations

import ast
import re
import shutil
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptbxl_xai.config import FilterSettings
from ptbxl_xai.data.labels import read_statements
from ptbxl_xai.data.metadata import read_database
from ptbxl_xai.data.preprocess import process_part
from ptbxl_xai.data.ptbxl import DATABASE_CSV, LEADS, STATEMENTS_CSV, bundled_statements
from ptbxl_xai.data.wfdb_io import RecordError, read_wfdb_record

FIXTURES = Path(__file__).parent / "fixtures"
REAL_RECORDS = [
    ("records100/00000/00001_lr", 100),
    ("records100/00000/00008_lr", 100),
    ("records500/00000/00001_hr", 500),
]
UNITS = {"mV": 1.0, "uV": 1e-3, "V": 1e3}
FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _digital(rel: str) -> np.ndarray:
    """The fixture's samples x 12 int16 values, straight from its .dat."""
    return np.fromfile(FIXTURES / f"{rel}.dat", dtype="<i2").reshape(-1, 12)


def _copy(rel: str, dst: Path) -> Path:
    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
    for ext in (".hea", ".dat"):
        shutil.copyfile(FIXTURES / f"{rel}{ext}", dst / f"{rel}{ext}")
    return dst / rel


def _original(rel: str) -> np.ndarray:
    return (_digital(rel) / 1000.0).T.astype(np.float32)  # PTB-XL: gain 1000/mV, baseline 0


# ---------------------------------------------------------------------------------- headers
TOKEN_VALUES = st.one_of(
    st.text(alphabet=string.printable, max_size=14),
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "",
            "0",
            "-0",
            "nan",
            "inf",
            "-1",
            "1e309",
            "0.4",
            "1e9",
            "250",
            "100.0",
            "500",
            "100/1000",
            "1000.0(0)/uV",
            "1000(5)/mV",
            "1.0/V",
            "1000.0",
            "-1000.0(0)/mV",
            "0(0)/mV",
            "1000.0(0)/mmHg",
            "16+24",
            "212",
            "80",
            "16x2",
            "16:3",
            "i",
            "v1",
            "aVR",
            "II",
            "abc.dat",
            "../x.dat",
            "00008_lr.dat",
            "00001_hr.dat",
            "999",
            "1001",
            "4999",
            "00001_lr/2",
        ]
    ),
)


@st.composite
def mutated_header(draw, text: str):
    """A header with one token replaced, deleted or garbled, or one line deleted/duplicated/swapped."""
    lines = text.splitlines()
    op = draw(st.sampled_from(["replace", "garble", "delete token", "append token", "line"]))
    i = draw(st.integers(0, len(lines) - 1))
    tokens = lines[i].split()
    j = draw(st.integers(0, len(tokens) - 1))
    if op == "replace":
        tokens[j] = draw(TOKEN_VALUES)
    elif op == "garble":
        k = draw(st.integers(0, len(tokens[j])))
        c = draw(st.sampled_from(list(string.printable)))
        tokens[j] = tokens[j][:k] + c + tokens[j][k + 1 :] if draw(st.booleans()) else tokens[j][:k] + c + tokens[j][k:]
    elif op == "delete token":
        del tokens[j]
    elif op == "append token":
        tokens.append(draw(TOKEN_VALUES))
    if op != "line":
        lines[i] = " ".join(tokens)
        return "\n".join(lines) + "\n", (i, j if op != "append token" else None)
    what = draw(st.sampled_from(["delete", "duplicate", "swap"]))
    k = draw(st.integers(1, len(lines) - 1))
    if what == "delete":
        del lines[i]
    elif what == "duplicate":
        lines.insert(i, lines[i])
    else:
        lines[i], lines[k] = lines[k], lines[i]
    return "\n".join(lines) + "\n", (None, None)


def _expected(base: Path, rel: str, line: int | None, token: int | None) -> np.ndarray:
    """What a kept mutant must read as: the original, except where a gain token of signal line k
    changed, where the lead follows that token as wfdb (the field's reader) understands it."""
    x = _original(rel).astype(np.float64)
    if line is not None and line >= 1 and token == 2:
        h = wfdb.rdheader(str(base))
        k = line - 1
        lead = LEADS.index(h.sig_name[k].upper())
        assert lead == k  # PTB-XL order, names unchanged by this mutation
        x[lead] = (_digital(rel)[:, k] - h.baseline[k]) / h.adc_gain[k] * UNITS[h.units[k]]
    return x


@pytest.mark.parametrize("rel,rate", REAL_RECORDS)
@FUZZ
@given(data=st.data())
def test_any_header_token_gives_a_correct_record_or_a_reason(tmp_path_factory, rel, rate, data):
    text = (FIXTURES / f"{rel}.hea").read_text()
    mutant, (line, token) = data.draw(mutated_header(text))
    root = tmp_path_factory.mktemp("rec")
    base = _copy(rel, root)
    (root / f"{rel}.hea").write_text(mutant)
    try:
        x = read_wfdb_record(base, rate=rate, min_samples=10 * rate)
    except RecordError as exc:
        assert str(exc).strip() and exc.kind
        return
    if mutant.split() == text.split():  # whitespace only
        np.testing.assert_array_equal(x, _original(rel))
        return
    np.testing.assert_allclose(x, _expected(base, rel, line, token), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("rel,rate", REAL_RECORDS[:1])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_preprocessing_a_mutated_record_keeps_it_or_names_it(tmp_path_factory, rel, rate, data):
    """Through process_part (the preprocess worker): a kept record or one quality line naming it."""
    text = (FIXTURES / f"{rel}.hea").read_text()
    mutant, _ = data.draw(mutated_header(text))
    root = tmp_path_factory.mktemp("part")
    _copy(rel, root)
    (root / f"{rel}.hea").write_text(mutant)
    result = process_part(str(root), [(1, 15709.0, 3, rel)], 3, 0, FilterSettings(rate=rate), str(root / "out"))
    assert result.n == 1
    if result.kept:
        assert result.kept == [1] and not result.quality
    else:
        (q,) = result.quality
        assert q["record"] == rel and q["ecg_id"] == 1 and q["reason"] and q["kind"] != "unexpected error"


@given(
    names=st.lists(st.sampled_from(["lower", "upper", "title"]), min_size=12, max_size=12),
    gain=st.sampled_from(["1000.0(0)/mV", "1000(0)/mV", "1e3(0)/mV", "1000.000/mV", "1000.0", "1(0)/uV"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    comment=st.booleans(),
    spaces=st.sampled_from([" ", "  ", "\t"]),
)
@settings(max_examples=60, deadline=None)
def test_equivalent_headers_are_kept_with_the_same_values(tmp_path_factory, names, gain, newline, comment, spaces):
    """Rewrites that keep the meaning (lead name case, gain spelling, comments, line ends) are kept."""
    rel = REAL_RECORDS[0][0]
    root = tmp_path_factory.mktemp("eq")
    base = _copy(rel, root)
    lines = (FIXTURES / f"{rel}.hea").read_text().splitlines()
    out = ["# a comment line"] if comment else []
    out.append(spaces.join(lines[0].split()))
    for line, case in zip(lines[1:], names):
        t = line.split()
        t[2] = gain
        t[8] = getattr(t[8], case)()
        out.append(spaces.join(t))
    (root / f"{rel}.hea").write_text(newline.join(out) + newline)
    x = read_wfdb_record(base, rate=100, min_samples=1000)
    np.testing.assert_allclose(x, _original(rel), rtol=1e-6)  # 1 unit per uV is 1000 per mV


@pytest.mark.parametrize("fmt,gain", [("212", 200.0), ("80", 20.0), ("24", 1000.0), ("32", 1000.0), ("16", 1000.0)])
def test_other_storage_formats_and_lead_orders_are_kept(tmp_path, fmt, gain):
    """Valid but unusual WFDB: another format, lower-case names, another lead order."""
    x0 = _original(REAL_RECORDS[0][0]).astype(np.float64)
    order = np.random.default_rng(int(fmt)).permutation(12)
    names = [LEADS[i].lower() if i % 2 else LEADS[i] for i in order]
    wfdb.wrsamp(  # wfdb writes no dotted record name; the header is renamed below
        "rec",
        fs=100,
        units=["mV"] * 12,
        sig_name=names,
        p_signal=x0[order].T,
        fmt=[fmt] * 12,
        adc_gain=[gain] * 12,
        baseline=[0] * 12,
        write_dir=str(tmp_path),
    )
    (tmp_path / "rec.hea").rename(tmp_path / "rec.2024-01-01.hea")
    x = read_wfdb_record(tmp_path / "rec.2024-01-01", rate=100, min_samples=1000)
    step = 1.0 / gain  # the format's quantisation, mV
    np.testing.assert_allclose(x, x0, atol=step * 0.51 if fmt != "80" else 0.26)  # fmt 80 clips at +-128/20 mV


def test_a_missing_sampling_rate_is_not_read_as_wfdbs_250_hz(tmp_path):
    rel = REAL_RECORDS[0][0]
    base = _copy(rel, tmp_path)
    text = (tmp_path / f"{rel}.hea").read_text().splitlines()
    (tmp_path / f"{rel}.hea").write_text("\n".join(["00001_lr 12"] + text[1:]) + "\n")
    assert wfdb.rdheader(str(base)).fs == 250  # the library's silent default
    with pytest.raises(RecordError, match="no sampling rate"):
        read_wfdb_record(base, rate=100, min_samples=1000)


def test_data_file_of_another_record_is_caught_by_the_checksum(tmp_path):
    base = _copy(REAL_RECORDS[0][0], tmp_path)
    _copy(REAL_RECORDS[1][0], tmp_path)
    hea = base.with_name("00001_lr.hea")
    hea.write_text(hea.read_text().replace("00001_lr.dat", "00008_lr.dat"))
    with pytest.raises(RecordError, match="checksum of signal I does not match"):
        read_wfdb_record(base, rate=100, min_samples=1000)


# ---------------------------------------------------------------------------------- metadata
ROWS = pd.read_csv(FIXTURES / "ptbxl_database_rows.csv", dtype=str, keep_default_na=False)
USED = ["ecg_id", "patient_id", "strat_fold", "scp_codes", "filename_lr"]
FIELD_VALUES = st.one_of(
    TOKEN_VALUES,
    st.sampled_from(
        [
            "{'NORM': 100.0}",
            "{'NORM': 100.0, 'NORM': 0.0}",
            "{'NOPE': 50.0}",
            "{'NORM': None}",
            "{'NORM': -5}",
            "{'NORM': 101}",
            "{'NORM': float('nan')}",
            "{1: 100.0}",
            "{'NORM': 100.0",
            "['NORM']",
            "{}",
            "3.0",
            "3.5",
            "11",
            "0",
            "+3",
            "records100/00000/00001_lr",
            "records100/00000/00012_lr",
            "records500/00000/00001_hr",
            "/etc/passwd",
            "records100/../../x/00001_lr",
            "records100\\00000\\00001_lr",
            "15709.0",
            "-15709",
            "1.0",
            "01",
        ]
    ),
)


def _database_folder(root: Path, df: pd.DataFrame) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    df.to_csv(root / DATABASE_CSV, index=False)
    shutil.copyfile(bundled_statements(), root / STATEMENTS_CSV)
    return root


KNOWN = set(read_statements(bundled_statements()).index)


@FUZZ
@given(row=st.integers(0, len(ROWS) - 1), column=st.sampled_from(list(ROWS.columns)), value=FIELD_VALUES)
def test_any_metadata_field_gives_a_correct_row_or_a_reason(tmp_path_factory, row, column, value):
    df = ROWS.copy()
    original_id = int(df.at[row, "ecg_id"])
    df.at[row, column] = value
    root = _database_folder(tmp_path_factory.mktemp("db"), df)
    meta, bad = read_database(root, 100, known_codes=KNOWN)
    mutated = str(value)
    others = {int(i) for k, i in enumerate(ROWS["ecg_id"]) if k != row}
    integral = re.fullmatch(r"\+?(\d+)(?:\.0*)?", mutated.strip())
    if column == "ecg_id" and integral and int(integral.group(1)) in others:
        # two rows claim one ecg_id: which one is right is unknown, so both are quarantined
        claimed = int(integral.group(1))
        assert claimed not in meta.index and original_id not in meta.index
        assert others - {claimed} <= set(meta.index)
        assert [q["ecg_id"] for q in bad] == [claimed] * 2 and "appears 2 times" in bad[0]["reason"]
        return
    assert others <= set(meta.index)  # the other rows never suffer
    if original_id in meta.index:
        kept = meta.loc[original_id]
        if column not in USED:
            return  # fields preprocessing does not read cannot matter
        if column == "patient_id":
            assert kept["patient_id"] == float(mutated) >= 0
        elif column == "strat_fold":
            assert float(mutated) == kept["strat_fold"] and 1 <= kept["strat_fold"] <= 10
        elif column == "scp_codes":
            codes = ast.literal_eval(mutated)
            assert kept["scp_codes"] == {k: float(v) for k, v in codes.items()}
            assert set(codes) <= KNOWN and all(0 <= v <= 100 for v in codes.values())
        elif column == "filename_lr":
            assert kept["filename_lr"] == mutated.strip() == f"records100/00000/{original_id:05d}_lr"
        elif column == "ecg_id":
            assert float(mutated) == original_id
        return
    assert column in USED, f"a field preprocessing does not read ({column}) dropped row {original_id}"
    assert bad, "a row vanished without a quality line"
    for q in bad:
        assert q["reason"].startswith("bad metadata row: ") and len(q["reason"]) > len("bad metadata row: ")
        assert q["ecg_id"] is not None or "line" in q["record"]


@FUZZ
@given(line=st.integers(1, len(ROWS)), cut=st.integers(0, 400), insert=st.sampled_from(["", ",", '"', "\n", "x,y"]))
def test_a_garbled_csv_line_costs_that_row_only(tmp_path_factory, line, cut, insert):
    root = _database_folder(tmp_path_factory.mktemp("raw"), ROWS)
    lines = (root / DATABASE_CSV).read_text().split("\n")
    k = min(cut, len(lines[line]))
    lines[line] = lines[line][:k] + insert + lines[line][k:]
    (root / DATABASE_CSV).write_text("\n".join(lines))
    meta, bad = read_database(root, 100, known_codes=KNOWN)
    for ecg_id in meta.index:  # whatever is kept is a real row, unchanged
        ref = ROWS[ROWS["ecg_id"] == str(ecg_id)].iloc[0]
        assert meta.at[ecg_id, "scp_codes"] == ast.literal_eval(ref["scp_codes"])
        assert meta.at[ecg_id, "strat_fold"] == int(ref["strat_fold"])
        assert meta.at[ecg_id, "filename_lr"] == ref["filename_lr"]
    if '"' not in insert:  # an open quote may swallow the following lines into one field
        assert len(meta) >= len(ROWS) - 1


def test_preprocess_runs_through_unusable_rows_and_names_them(tmp_path):
    """End to end: rows with an unusable id, a ragged line and a bad fold cost those rows only."""
    from ptbxl_xai.data.preprocess import preprocess

    root = tmp_path / "ptbxl"
    for rel, _ in REAL_RECORDS[:2]:
        _copy(rel, root)
    df = ROWS[ROWS["ecg_id"].isin(["1", "8", "12"])].copy()  # 12 has no record here
    df.loc[df["ecg_id"] == "12", "ecg_id"] = "twelve"
    _database_folder(root, df)
    with open(root / DATABASE_CSV, "a") as f:
        f.write("77,1,2,3\n")  # a ragged line
    quality = tmp_path / "quality.tsv"
    summary = preprocess(
        root, tmp_path / "100hz", tmp_path / "labels.parquet", quality, FilterSettings(), progress=False
    )
    assert int(summary.kept.sum()) == 2
    q = pd.read_csv(quality, sep="\t")
    assert sorted(q["record"].astype(str)) == ["ptbxl_database.csv line 4", "ptbxl_database.csv line 5"]
    assert q["reason"].str.startswith("bad metadata row: ").all()
