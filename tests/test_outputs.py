"""Files a person opens: thresholds as grid values, TSVs without float noise, the closing messages of a run."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from ptbxl_xai.evaluation.thresholds import DEFAULT_GRID, read_thresholds, tune_thresholds, write_thresholds
from ptbxl_xai.outputs import reading_precision, write_tsv
from ptbxl_xai.run_summary import error_message, failed_logs, success_message


def test_tuned_thresholds_round_trip_as_grid_values(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random((400, 6)) < 0.3
    probs = np.clip(y * 0.35 + rng.random((400, 6)) * 0.6, 0, 1)
    thr = tune_thresholds(y, probs)
    assert np.isin(thr, np.round(DEFAULT_GRID, 2)).all()  # 0.47, not 0.4699999999999999
    names = [f"L{i}" for i in range(6)]
    path = tmp_path / "thresholds.json"
    write_thresholds(path, thresholds=thr, label_names=names, label_set="all", tuned_on_folds=(9,))
    text = path.read_text()
    assert not re.search(r"\d\.\d{3,}", text), text  # every threshold printed with at most 2 decimals
    assert json.loads(text)["tuned_on_folds"] == [9]
    back = read_thresholds(path, names)
    assert np.array_equal(back, thr)
    f1_at = lambda t: ((probs >= t) & y).sum(0)  # noqa: E731  same predictions from the file as from memory
    assert np.array_equal(f1_at(back), f1_at(thr))


def test_tsv_prints_four_significant_digits_and_reads_back(tmp_path):
    exact = pd.DataFrame(
        {
            "label": ["A", "B", "C"],
            "auc": [0.912345678, 0.4699999999999999, np.nan],
            "p": [1.23456e-5, 0.05, 1.0],
            "support": [21799, 3, 0],
            "seconds": [123.456789, 2.0, 0.5],
        }
    )
    path = write_tsv(exact, tmp_path / "t.tsv")
    lines = path.read_text().splitlines()
    assert lines[1].split("\t") == ["A", "0.9123", "0.00001235", "21799", "123.4568"]
    assert lines[2].split("\t")[1] == "0.47" and lines[3].split("\t")[1] == ""
    back = pd.read_csv(path, sep="\t")
    assert np.allclose(back["auc"], exact["auc"], rtol=5e-4, equal_nan=True)
    assert back["support"].tolist() == [21799, 3, 0]
    assert reading_precision(float(reading_precision(0.123456))) == "0.1235"  # stable when written again
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left beside it


def _fake_run(tmp_path):
    (tmp_path / "results/data").mkdir(parents=True)
    (tmp_path / "ptbxl").mkdir()
    (tmp_path / "ptbxl/ptbxl_database.csv").write_text("ecg_id,x\n" + "".join(f"{i},a\n" for i in range(1, 11)))
    manifest = {"source": "local", "root": str(tmp_path / "ptbxl"), "sampling_rate": 100}
    (tmp_path / "results/data/source.json").write_text(json.dumps(manifest))
    (tmp_path / "results/data/quality.tsv").write_text(
        "ecg_id\tstrat_fold\trecord\tkind\treason\n4\t1\tr4\tshort\ttoo short\n7\t2\tr7\tnan\tNaN samples\n"
    )
    for rel in (
        "results/tables/r1/table1_overall.md",
        "results/figures/r1/roc_pr_curves.png",
        "results/viewer/r1/index.html",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")


def test_success_message_names_existing_files_the_report_command_and_the_data(tmp_path):
    _fake_run(tmp_path)
    msg = success_message(tmp_path, ["r1", "r2"], configfiles=["my data.yaml"])
    assert "local PTB-XL" in msg and "8 of 10 records kept, 2 quarantined" in msg
    for rel in (
        "results/tables/r1/table1_overall.md",
        "results/figures/r1/roc_pr_curves.png",
        "results/viewer/r1/index.html",
    ):
        assert rel in msg
    assert "r2" not in msg  # a run with nothing built is not advertised
    assert "snakemake --report results/report.html --configfile 'my data.yaml'" in msg


def test_error_message_shows_the_failed_rules_log_and_what_to_try(tmp_path):
    (tmp_path / "results/logs/train").mkdir(parents=True)
    (tmp_path / "results/logs/train/r1.log").write_text("loading\nValueError: labels.parquet: no label set 'foo'\n")
    main = tmp_path / "snakemake.log"
    main.write_text(
        "Error in rule train:\n    jobid: 3\n    log: results/logs/train/r1.log (check log file(s) for error details)\n"
    )
    assert failed_logs([str(main)]) == ["results/logs/train/r1.log"]
    msg = error_message([str(main)], workdir=tmp_path)
    assert "ValueError: labels.parquet: no label set 'foo'" in msg and "results/logs/train/r1.log" in msg
    assert msg.strip().splitlines()[-1].startswith("What to try:")
