"""The whole DAG on the synthetic configuration, as a user runs it (real Snakemake subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ptbxl_xai.data.parquet_io import load_fold_arrays

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC = REPO / "tests" / "config" / "synthetic.yaml"

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(SYNTHETIC),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)


@pytest.fixture(scope="module")
def workdir(quick_workdir, quick_config, tmp_path_factory):
    """A copy of the session's run of the quick synthetic configuration (conftest.quick_workdir), with that
    configuration beside it as quick.yaml: the tests here run further targets in it (in_workdir)."""
    from conftest import copy_workdir

    wd = copy_workdir(quick_workdir, tmp_path_factory.mktemp("workflow") / "wd")
    (wd / "quick.yaml").write_bytes(quick_config.read_bytes())
    return wd


def in_workdir(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """snakemake in the workflow fixture's workdir, with the configuration it was run with."""
    return snakemake(workdir, *args, "--configfile", str(workdir / "quick.yaml"))  # last: it takes several values


def test_synthetic_dag_produces_the_data_contract(workdir):
    data = workdir / "results" / "data"
    x, y, ids, names = load_fold_arrays(data / "100hz", data / "labels.parquet", range(1, 9), "superdiagnostic")
    assert x.shape[1:] == (12, 1000) and len(ids) > 150
    assert set(names) == {"CD", "HYP", "MI", "NORM", "STTC"}
    quality = pd.read_csv(data / "quality.tsv", sep="\t")
    assert list(quality.columns) == ["ecg_id", "strat_fold", "record", "kind", "reason"]
    for rule in ("acquire", "preprocess", "train/hybrid", "predict/hybrid_test", "evaluate/hybrid"):
        assert (workdir / "results" / "logs" / f"{rule}.log").stat().st_size > 0
        bench = pd.read_csv(workdir / "results" / "benchmarks" / f"{rule}.tsv", sep="\t")
        assert "max_rss" in bench.columns


@pytest.mark.parametrize("run", ["hybrid", "hybrid_superdiagnostic"])
def test_model_learns_the_synthetic_classes(workdir, run):
    metrics = workdir / "results" / "metrics" / run
    overall = pd.read_csv(metrics / "overall.tsv", sep="\t").set_index("metric")
    prior = pd.read_csv(metrics / "prior_baseline.tsv", sep="\t").set_index("metric")
    # chance is 0.5; the synthetic classes are learnable, so demand a clear margin
    assert overall.at["macro_auc", "value"] > 0.75
    assert overall.at["macro_f1@tuned", "value"] > prior.at["macro_f1@tuned", "value"] + 0.1
    assert overall.at["macro_auc", "ci_low"] < overall.at["macro_auc", "value"] < overall.at["macro_auc", "ci_high"]
    per_label = pd.read_csv(metrics / "per_label.tsv", sep="\t")
    assert {"label", "support", "auc", "f1", "precision", "recall", "threshold"} <= set(per_label.columns)
    comparison = pd.read_csv(metrics / "comparison.tsv", sep="\t")
    assert (comparison.value[comparison.source.str.startswith("paper")] > 0).all()
    model = workdir / "results" / "models" / run
    history = pd.read_csv(model / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_macro_auc", "lr", "seconds"]
    for split in ("val", "test"):
        assert (workdir / "results" / "predictions" / run / f"{split}.parquet").is_file()


def test_figures_tables_and_viewer_are_rendered(workdir):
    from PIL import Image

    from ptbxl_xai.report.render import EXPLANATION_FIGURES, PERFORMANCE_FIGURES

    res = workdir / "results"
    for run, names in (
        ("hybrid", PERFORMANCE_FIGURES),
        ("hybrid_superdiagnostic", PERFORMANCE_FIGURES + EXPLANATION_FIGURES),
    ):
        for name in names:
            png = res / "figures" / run / f"{name}.png"
            with Image.open(png) as im:
                assert im.size[0] >= 900 and im.size[1] >= 500, png  # 150 dpi, >= 6 x 3.3 inches
            assert (res / "figures" / run / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    page = (res / "viewer" / "hybrid_superdiagnostic" / "index.html").read_text()
    assert '<script type="application/json" id="data">' in page and "https://" not in page


def test_tables_hold_the_numbers_of_the_metrics_files(workdir):
    res = workdir / "results"
    for run in ("hybrid", "hybrid_superdiagnostic"):
        overall = pd.read_csv(res / "metrics" / run / "overall.tsv", sep="\t").set_index("metric")
        table1 = pd.read_csv(res / "tables" / run / "table1_overall.tsv", sep="\t")
        ours = table1[table1.source == "this workflow"].set_index("metric")
        for metric in ("macro_auc", "macro_f1@tuned", "fmax"):
            # both printed at 4 significant digits (exact values stay in Parquet)
            assert ours.at[metric, "value"] == pytest.approx(overall.at[metric, "value"], rel=1e-3)
            assert ours.at[metric, "ci_low"] == pytest.approx(overall.at[metric, "ci_low"], rel=1e-3)
        per_label = pd.read_csv(res / "metrics" / run / "per_label.tsv", sep="\t").set_index("label")
        table = pd.read_csv(res / "tables" / run / "per_label_table.tsv", sep="\t").set_index("label")
        pd.testing.assert_series_equal(table["auc"].sort_index(), per_label["auc"].sort_index())
        assert "| " in (res / "tables" / run / "table1_overall.md").read_text()
        assert "\\begin{tabular}" in (res / "tables" / run / "table1_overall.tex").read_text()
    summary = pd.read_csv(res / "explain" / "hybrid_superdiagnostic" / "correlation.tsv", sep="\t")
    table = pd.read_csv(res / "tables" / "hybrid_superdiagnostic" / "correlation_table.tsv", sep="\t")
    key = [c for c in summary.columns if c in table.columns and summary[c].dtype == object]  # every label column
    merged = summary.merge(table, on=key, suffixes=("", "_table"))
    assert len(merged) > 0 and np.allclose(merged["median"], merged["median_table"], rtol=1e-3)


def test_explanations_are_written(workdir):
    ex = workdir / "results" / "explain" / "hybrid_superdiagnostic"
    shap = pd.read_parquet(ex / "shap.parquet")
    assert {"ecg_id", "label", "method", "lead", "bin", "value"} <= set(shap.columns)
    assert set(shap.method) == {"shap", "shap_gradient"} and shap.bin.max() == 19
    meta = pd.read_csv(ex / "explain_meta.tsv", sep="\t")
    assert meta.loc[meta.method == "shap", "additivity_error"].max() < 1e-4  # SHAP local accuracy
    faith = pd.read_csv(ex / "faithfulness.tsv", sep="\t")
    assert {"shap", "lime", "attention", "random"} <= set(faith.method)
    corr = pd.read_csv(ex / "correlation.tsv", sep="\t")
    row = corr[(corr.method_a == "shap") & (corr.method_b == "attention") & (corr.statistic == "pearson")]
    # per feature space (waves and bins) and per variant (signed, absolute)
    assert set(row["feature_space"]) == set(corr["feature_space"]) and row["median"].between(-1, 1).all()


def test_counterfactuals_are_scored_for_the_trained_and_the_randomised_model(workdir):
    checks = workdir / "results" / "explain" / "hybrid_superdiagnostic" / "checks"
    rows = pd.read_csv(checks / "counterfactuals_records.tsv", sep="\t")
    summary = pd.read_csv(checks / "counterfactuals.tsv", sep="\t")
    assert set(rows["model"]) == {"trained", "randomised"} and "NORM" not in set(rows["label"])
    assert set(rows["kind"]) == {"segments", "st_shift", "t_scale", "qrs_scale", "qrs_duration", "pr_duration"}
    trained = rows[(rows["model"] == "trained") & (rows["kind"] == "segments")]
    assert len(trained) and (trained["status"] != "not predicted").all()  # checked: positives the model calls
    valid = trained[trained["valid"]]
    assert len(valid) and (valid["p_after"] < valid["threshold"]).all() and (valid["n_changed"] >= 1).all()
    assert valid["plausible"].notna().all() and valid["rule_share"].between(0, 1).all()
    invalid = rows[~rows["valid"].astype(bool)]
    assert invalid["reason"].fillna("").str.len().gt(0).all()  # every failure says why
    t = summary[summary["model"] == "trained"]
    assert t["validity"].between(0, 1).all() and t["control"].fillna("").str.len().gt(0).all()
    assert (
        checks.parent.parent.parent / "figures" / "hybrid_superdiagnostic" / "counterfactual_examples.pdf"
    ).is_file()


def test_report_is_generated(workdir):
    run = in_workdir(workdir, "--report", "results/report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (workdir / "results" / "report.html").read_text(errors="replace")
    assert "fig2_shap_heatmap" in html and "table1_overall" in html
    assert "expert_rule_alignment" in html and "method_flags" in html  # the checks, with their captions
    assert "(ERROR/" not in run.stdout + run.stderr  # every caption is valid reStructuredText


def test_rerun_is_a_no_op(workdir):
    run = in_workdir(workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_typo_in_config_fails_before_any_job(tmp_path):
    run = snakemake(tmp_path, "--config", "preprocess={n_binz: 10}")
    assert run.returncode != 0
    assert "'n_binz' was unexpected" in run.stderr
    assert not (tmp_path / "results").exists()


def test_explain_your_own_ecg(workdir, tmp_path):
    """A user's 500 Hz WFDB record: resampled with a note, classified, explained, shown in a page."""
    import numpy as np
    from conftest import ecg_like, write_record

    rel = write_record(tmp_path, 7, 500, ecg_like(np.random.default_rng(7), 5000, 500))
    target = "results/explain_record/mine/index.html"
    run = in_workdir(workdir, target, "--config", f"explain_record={{records: {{mine: {tmp_path / rel}}}}}")
    assert run.returncode == 0, run.stderr[-3000:]
    out = workdir / "results" / "explain_record" / "mine"
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert set(preds.label) == {"CD", "HYP", "MI", "NORM", "STTC"} and preds.probability.between(0, 1).all()
    assert {"shap", "lime", "attention"} <= set(pd.read_parquet(out / "attributions.parquet").method)
    assert "resampled from 500 Hz to 100 Hz" in (out / "index.html").read_text()

    bad = write_record(tmp_path, 8, 100, ecg_like(np.random.default_rng(8), 1000, 100, leads=2), names=["I", "II"])
    run = in_workdir(
        workdir,
        "results/explain_record/bad/index.html",
        "--config",
        f"explain_record={{records: {{bad: {tmp_path / bad}}}}}",
    )
    assert run.returncode != 0
    log = (workdir / "results" / "logs" / "explain_record" / "bad.log").read_text()
    assert "00008_lr.hea: 2 signals" in log and "missing ['III'" in log
    # the closing message shows the failed rule's log and what to try (Snakefile onerror)
    assert "last" in run.stdout and "00008_lr.hea: 2 signals" in run.stdout and "What to try:" in run.stdout
