"""Label aggregation checked by hand on real PTB-XL v1.0.3 rows (tests/fixtures, CC BY 4.0)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ptbxl_xai.data.labels import aggregate_labels, labels_table, parse_scp_codes, read_statements
from ptbxl_xai.data.ptbxl import bundled_statements

ROWS = Path(__file__).parent / "fixtures" / "ptbxl_database_rows.csv"

# Worked out by hand from scp_codes and scp_statements.csv (diagnostic/form/rhythm flags,
# diagnostic_class, diagnostic_subclass) for ecg_id 1, 8, 12, 39, 50, 77.
EXPECTED = {
    "all": [
        {"LVOLT", "NORM", "SR"},
        {"ABQRS", "IMI", "SR"},
        {"NORM", "SBRAD"},
        {"ABQRS", "DIG", "IMI", "LNGQT", "NST_", "SR"},
        {"IVCD", "LMI", "SR"},
        {"AMI", "IRBBB", "SR"},
    ],
    "diagnostic": [{"NORM"}, {"IMI"}, {"NORM"}, {"DIG", "IMI", "LNGQT", "NST_"}, {"IVCD", "LMI"}, {"AMI", "IRBBB"}],
    "subdiagnostic": [{"NORM"}, {"IMI"}, {"NORM"}, {"IMI", "NST_", "STTC"}, {"IVCD", "LMI"}, {"AMI", "IRBBB"}],
    "superdiagnostic": [{"NORM"}, {"MI"}, {"NORM"}, {"MI", "STTC"}, {"CD", "MI"}, {"CD", "MI"}],
    "form": [{"LVOLT"}, {"ABQRS"}, set(), {"ABQRS", "DIG", "LNGQT", "NST_"}, set(), set()],
    "rhythm": [{"SR"}, {"SR"}, {"SBRAD"}, {"SR"}, {"SR"}, {"SR"}],
}


@pytest.fixture(scope="module")
def rows():
    df = pd.read_csv(ROWS, index_col="ecg_id")
    df["scp_codes"] = [parse_scp_codes(s) for s in df["scp_codes"]]
    return df


@pytest.fixture(scope="module")
def statements():
    return read_statements(bundled_statements())


def as_sets(y, names):
    return [{names[j] for j in np.flatnonzero(r)} for r in y]


def test_every_label_set_matches_hand_computed_rows(rows, statements):
    assert rows.index.tolist() == [1, 8, 12, 39, 50, 77]
    ys, names = aggregate_labels(rows["scp_codes"], statements)
    for label_set, expected in EXPECTED.items():
        assert names[label_set] == sorted(set().union(*expected)), label_set  # sorted, as MultiLabelBinarizer
        assert as_sets(ys[label_set], names[label_set]) == expected, label_set


def test_min_count_keeps_labels_seen_in_more_records(rows, statements):
    ys, names = aggregate_labels(rows["scp_codes"], statements, min_count=2)
    # strictly more than 2 records: SR (5 rows), MI (4); NORM, CD, ABQRS, IMI (2 each) go
    assert names["all"] == ["SR"]
    assert names["superdiagnostic"] == ["MI"]
    assert names["rhythm"] == ["SR"]
    # the benchmark never filters the diagnostic set by count
    assert names["diagnostic"] == sorted(set().union(*EXPECTED["diagnostic"]))


def test_likelihood_threshold_drops_uncertain_statements(rows, statements):
    ys, names = aggregate_labels(rows["scp_codes"], statements, likelihood_min=50)
    got = as_sets(ys["diagnostic"], names["diagnostic"])
    # IMI at 35 (ecg 8) and 15 (ecg 39), LMI at 15 (ecg 50) fall below 50; AMI at 50 stays
    assert got == [{"NORM"}, set(), {"NORM"}, {"DIG", "LNGQT", "NST_"}, {"IVCD"}, {"AMI", "IRBBB"}]


def test_labels_table_keeps_names_and_ids(rows, statements):
    import json

    table = labels_table(rows, statements)
    assert table.column("ecg_id").to_pylist() == [1, 8, 12, 39, 50, 77]
    meta = json.loads(table.schema.metadata[b"ecgxai"])
    assert meta["label_names"]["superdiagnostic"] == ["CD", "MI", "NORM", "STTC"]
    assert table.column("y_superdiagnostic").to_pylist()[3] == [0, 1, 0, 1]


def test_bad_scp_codes_names_the_row():
    with pytest.raises(ValueError, match=r"ptbxl_database.csv ecg_id 7: scp_codes is not a dict"):
        parse_scp_codes("NORM: 100", where="ptbxl_database.csv ecg_id 7")


def test_statements_without_needed_columns_fail_naming_the_file(tmp_path):
    bad = tmp_path / "scp_statements.csv"
    bad.write_text(",description\nNORM,normal ECG\n")
    with pytest.raises(ValueError, match=r"scp_statements.csv lacks columns"):
        read_statements(bad)
