"""The software environments are real: each envs/*.yaml pip list, built into a fresh venv, runs every rule that
uses it on the synthetic data, and the main install alone builds the report.

No conda channel is reachable here, so each environment is the venv of its `pip:` list plus Snakemake (which
runs the rule's script with its own interpreter, as it does inside a conda environment). One DAG run goes stage
by stage, each stage in one environment, and a stage may only run rules that declare that environment.
Venvs are cached (tests/venvs.py); the first build of all four takes a few minutes.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import _merge, job_counts, write_record
from venvs import env_requirements, pin_of, venv_python

REPO = Path(__file__).resolve().parent.parent
ENV_FILES = {p.stem: p for p in sorted((REPO / "envs").glob("*.yaml"))}


# Environments of commands rather than rules (pins checked by tests/test_config.py like the others).
STANDALONE = {"app": "ecgxai serve, the live app (tests/test_app.py runs it in the main install)"}

# Rules the staged run leaves out, and why that is safe.
NOT_RUN = {
    "pool_cv": "needs all ten fold models (minutes); its script imports only numpy and pyarrow",
    "seed_consistency": "needs checks.seed_runs (several trained seeds); imports what sanity imports, which runs here",
}


# The known-answer target at its smallest: 10 pairs per label fill the ten folds once, one record per label explained.
KNOWN_ANSWER = {
    "pairs_per_label": 10,
    "train": {"epochs": 2, "patience": None},
    "records_per_label": 1,
    "spaces": ["waves", "bins"],
    "backgrounds": ["zero", "normal_template"],
    "methods": ["shap", "attention"],  # LIME and gradient SHAP go through the same explain_maps
    "n_boot": 20,
}


# The default explanations, which tests/config/synthetic.yaml swaps for the opt-in comparisons: so the staged run
# renders every figure from wave explanations plus SHAP on time bins, and the checks reuse the explain maps.
DEFAULT_XAI = {
    "explain": {"compare_features": False, "shap": {"gradient": False}},
    "checks": {"backgrounds": ["normal_template"], "methods": ["shap", "lime", "attention"]},
}


def rule_envs() -> dict[str, str]:
    """{rule: env name} for every rule with a `conda:` directive in rules/*.smk."""
    out = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule )", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            env = re.search(r'conda:\s*\n\s*"\.\./envs/(\w+)\.yaml"', block)
            if env:
                out[name] = env.group(1)
    return out


def test_every_scripted_rule_declares_an_existing_env():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule )", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            if "script:" in block:
                assert name in rule_envs(), f"rule {name} ({smk.name}) runs a script but declares no conda env"
    assert set(rule_envs().values()) | set(STANDALONE) == set(ENV_FILES), (
        "an envs/*.yaml no rule uses, or a rule's env is missing"
    )


def _config(path: Path) -> dict:
    return _merge(yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(path.read_text()))


def _snakemake(python: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(python), "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)


@pytest.fixture(scope="module")
def env_pythons() -> dict[str, Path]:
    """{env name: python of a fresh venv with the env's pip list and Snakemake}."""
    pythons = {}
    for name, path in ENV_FILES.items():
        if name in STANDALONE:
            continue
        pythons[name], build = venv_python(env_requirements(path) + [pin_of("snakemake")])
        print(f"\nvenv {name}: {'cached' if build['cached'] else 'built'} ({build['seconds']:.0f} s to build)")
    return pythons


@pytest.fixture(scope="module")
def staged_run(env_pythons, quick_config, tmp_path_factory):
    """The quick synthetic DAG plus explain_record and ablation, each stage in one environment.

    Returns (workdir, {stage: {rule: jobs}}, {stage: seconds}, {stage: terminal output}).
    """
    import numpy as np
    from conftest import ecg_like

    from ptbxl_xai.config import data_path, expand_runs

    wd = tmp_path_factory.mktemp("envs")
    record = wd / "own" / write_record(wd / "own", 7, 100, ecg_like(np.random.default_rng(7), 1000, 100))
    own = wd / "own.yaml"
    own.write_text(yaml.safe_dump({"explain_record": {"records": {"mine": str(record)}}, "known_answer": KNOWN_ANSWER,
                                   **DEFAULT_XAI}))  # fmt: skip
    cfg = _config(quick_config)
    runs, ablation_runs, explained = list(cfg["runs"]), list(expand_runs(cfg["ablation"])), cfg["explain"]["runs"]
    stages = [
        (
            "data",
            ["results/data/labels.parquet", "results/data/quality.tsv", "results/delineation/100hz"]
            + sorted({data_path({**cfg, "runs": expand_runs(cfg["ablation"])}, r) for r in ablation_runs}),
        ),
        (
            "torch",
            [f"results/predictions/{r}/{s}.parquet" for r in runs for s in ("val", "test")]
            + [f"results/predictions/{runs[0]}/cv/fold1_test.parquet"]  # train_cv, predict_cv: one fold model
            + [f"results/predictions/{r}/test.parquet" for r in ablation_runs]
            + [f"results/explain/{r}/correlation.tsv" for r in explained]
            + [f"results/explain/{r}/backgrounds_per_record.parquet" for r in explained]
            + [
                f"results/explain/{r}/checks/{f}"
                for r in explained
                for f in (
                    "expert_rule_alignment.tsv",
                    "method_flags.tsv",
                    "counterfactuals.tsv",
                    "counterfactual_answers.json",
                )  # fmt: skip
            ]
            + ["results/explain_record/mine/index.html"],
        ),
        ("report", ["all"] + [f"results/metrics/{r}/overall.tsv" for r in ablation_runs]),
        ("torch", ["ablation", "known_answer"]),
    ]
    jobs, seconds, said = {}, {}, {}
    for i, (env, targets) in enumerate(stages):
        started = time.monotonic()
        run = _snakemake(env_pythons[env], wd, *targets, "--configfile", str(quick_config), str(own))
        seconds[f"{i}:{env}"] = time.monotonic() - started
        assert run.returncode == 0, f"stage {i} in env {env}:\n{run.stdout[-3000:]}{run.stderr[-5000:]}"
        jobs[f"{i}:{env}"] = {r: n for r, n in job_counts(run.stdout + run.stderr).items() if r != "all"}
        said[f"{i}:{env}"] = run.stdout
    print("\nstaged DAG seconds per environment:", {k: round(v) for k, v in seconds.items()})
    return wd, jobs, seconds, said


@pytest.mark.slow
def test_each_environment_runs_its_rules(staged_run):
    _, jobs, _, _ = staged_run
    envs = rule_envs()
    for stage, counts in jobs.items():
        env = stage.split(":")[1]
        foreign = {r: envs.get(r) for r in counts if envs.get(r) != env}
        assert not foreign, f"stage {stage} ran rules of other environments: {foreign}"
    ran = {r for counts in jobs.values() for r in counts}
    assert ran | set(NOT_RUN) == set(envs), f"rules never run in their environment: {sorted(set(envs) - ran)}"


@pytest.fixture(scope="module")
def main_python() -> Path:
    """A venv of the main install only (`pip install -e .`, no test extra), as the README's first command."""
    python, build = venv_python([], editable=REPO)
    print(f"\nvenv main install: {'cached' if build['cached'] else 'built'} ({build['seconds']:.0f} s to build)")
    return python


@pytest.mark.slow
def test_main_install_builds_the_report(main_python, staged_run, quick_config):
    wd, _, _, _ = staged_run
    report = wd / "report.html"
    run = _snakemake(main_python, wd, "--report", str(report), "--configfile", str(quick_config), str(wd / "own.yaml"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 100_000 and "table1_overall" in html and "roc_pr_curves" in html


@pytest.mark.slow
def test_closing_message_says_where_to_look(staged_run):
    """The default target's run ends by naming Table 1, figures and viewer (files that exist), the report command
    and the data (source, records kept and quarantined)."""
    wd, _, _, said = staged_run
    msg = said["2:report"]
    assert "Finished. Where to look" in msg, msg
    named = re.findall(r"results/[\w./-]+\.(?:md|tsv|tex|png|html)", msg)
    assert any("table1_overall" in p for p in named) and any("/viewer/" in p for p in named), msg
    missing = [p for p in named if p != "results/report.html" and not (wd / p).is_file()]
    assert not missing, f"the message names files that do not exist: {missing}"
    assert re.search(r"synthetic PTB-XL .*: \d+ of 300 records kept, \d+ quarantined", msg), msg
    assert "snakemake --report results/report.html --configfile" in msg


@pytest.mark.slow
def test_the_known_answer_target_writes_its_tables_and_figure(staged_run):
    """`snakemake known_answer` (run above in the torch environment): two architectures, every configured space,
    trained and randomised model, attention only where the architecture has it, the 0.95 AUC floor, the figure."""
    import pandas as pd

    from ptbxl_xai.data.planted import PLANTED_LABELS
    from ptbxl_xai.explain.spaces.features import FIDUCIALS

    wd = staged_run[0]
    out = wd / "results" / "known_answer"
    table = pd.read_csv(out / "localisation.tsv", sep="\t")
    assert set(table.architecture) == {"hybrid", "cnn"} and set(table.label) == set(PLANTED_LABELS)
    assert set(table.model) == {"trained", "randomised"} and set(table.feature_space) == {"waves", "bins"}
    assert "attention" in set(table[table.architecture == "hybrid"].method)
    assert "attention" not in set(table[table.architecture == "cnn"].method)  # the CNN has none
    assert table.share.between(0, 1).all() and table.region_share.between(0, 1).all()
    accuracy = pd.read_csv(out / "accuracy.tsv", sep="\t")
    assert len(accuracy) == 2 * len(PLANTED_LABELS) and accuracy.meaningful.dtype == bool
    assert ((accuracy.auc >= 0.95) == accuracy.meaningful).all()
    assert (wd / "results" / "figures" / "known_answer_localisation.png").stat().st_size > 10_000
    assert len(pd.read_csv(out / "delineation.tsv", sep="\t")) == len(PLANTED_LABELS) * len(FIDUCIALS)
    assert "best method per label" in (wd / "results" / "logs" / "known_answer.log").read_text()


@pytest.mark.slow
def test_once_the_known_answer_has_run_the_viewer_flags_each_method(staged_run, env_pythons, quick_config):
    """The viewer takes the planted benchmark's table once it exists (the next run rebuilds the page, in the report
    environment), and flags each method of the run's architecture (the hybrid) from it."""
    import json
    import re

    wd = staged_run[0]
    run_name = _config(quick_config)["explain"]["runs"][0]
    page = f"results/viewer/{run_name}/index.html"
    run = _snakemake(env_pythons["report"], wd, page, "--configfile", str(quick_config), str(wd / "own.yaml"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "viewer" in job_counts(run.stdout + run.stderr)  # rebuilt: its input set has grown
    text = (wd / page).read_text()
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S).group(1))
    flags = data["records"][0]["known_answer_flags"]
    assert {"shap", "attention"} <= set(flags), flags  # the methods KNOWN_ANSWER scores
    assert all(f.split(":")[0] in ("passed", "caution", "failed", "not checked") for f in flags.values())


@pytest.mark.slow
def test_ablation_target_renders_the_grid(staged_run):
    """`snakemake ablation` (run above in the torch environment): the reduced grid, paired against the reference."""
    import json

    import pandas as pd

    workdir = staged_run[0]
    table = pd.read_csv(workdir / "results" / "tables" / "ablation.tsv", sep="\t")
    assert table.variant.tolist() == ["cnn", "hybrid", "hybrid_train_standard"]  # the synthetic config's reduced grid
    per_run = pd.read_csv(workdir / "results" / "tables" / "ablation_per_run.tsv", sep="\t")
    for _, row in per_run.iterrows():
        overall = pd.read_csv(workdir / "results" / "metrics" / row.run / "overall.tsv", sep="\t")
        assert row.macro_auc == overall.set_index("metric").at["macro_auc", "value"]
    assert (table.parameters > 0).all() and (table.inference_ms_per_record > 0).all()
    assert table.set_index("variant").at["cnn", "parameters"] < table.set_index("variant").at["hybrid", "parameters"]
    assert (workdir / "results" / "figures" / "ablation.png").stat().st_size > 10_000
    paired = pd.read_csv(workdir / "results" / "tables" / "ablation_paired.tsv", sep="\t")
    assert set(paired.variant) == {"cnn", "hybrid_train_standard"} and (paired.reference_run == "abl-hybrid-s0").all()
    # the normalisation variant trained on the same records, renormalised with the training folds' scaler
    other = workdir / "results" / "data" / "100hz-train_standard"
    assert json.loads((other / "normalization.json").read_text())["fitted_on_folds"] == list(range(1, 9))
    ids = {
        run: set(pd.read_parquet(workdir / "results" / "predictions" / run / "test.parquet").ecg_id)
        for run in ("abl-hybrid-s0", "abl-hybrid_train_standard-s0")
    }
    assert ids["abl-hybrid-s0"] == ids["abl-hybrid_train_standard-s0"]
    log = (workdir / "results" / "logs" / "train" / "abl-hybrid_train_standard-s0.log").read_text()
    assert "100hz-train_standard" in log
    assert (
        table.set_index("variant").at["cnn", "delta_macro_auc"]
        == paired.set_index(["variant", "metric"]).at[("cnn", "macro_auc"), "delta"]
    )


def test_the_default_explanations_reuse_maps_and_keep_the_papers_bins(staged_run):
    """At the defaults (DEFAULT_XAI) the checks take the explain stage's SHAP and LIME of records it explained,
    and the explain stage adds SHAP (not LIME) on time bins for Figures 1-3."""
    import pandas as pd

    wd, run = staged_run[0], "hybrid_superdiagnostic"
    log = (wd / "results" / "logs" / "expert_rules" / f"{run}.log").read_text()
    reused = re.search(r"reused (\d+) \(record, method\) maps of the explain stage", log)
    assert reused and int(reused.group(1)) > 0, log[-2000:]
    shap = pd.read_parquet(wd / "results" / "explain" / run / "shap.parquet")
    lime = pd.read_parquet(wd / "results" / "explain" / run / "lime.parquet")
    assert set(shap.feature_space) == {"waves", "bins"} and set(lime.feature_space) == {"waves"}
    assert (wd / "results" / "figures" / run / "fig2_shap_heatmap.png").stat().st_size > 0
