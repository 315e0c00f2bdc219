"""Reproducibility of reruns: what Snakemake redoes after a change, and seeded CPU training.

All on the quick synthetic configuration (conftest.quick_config: CPU, 50 bootstrap resamples). The finished workdir is shared for the session (conftest.quick_workdir, also the
local reference of test_slurm.py); the test that changes results works on a copy.
"""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import assert_same_results, copy_workdir, job_counts, result_files
from slurm_cluster import missing_binaries
from test_workflow import snakemake

pytestmark = pytest.mark.slow

UPSTREAM = {"acquire", "preprocess", "train", "predict"}  # what an evaluation parameter must not redo


def run_ok(workdir, *args):
    run = snakemake(workdir, *args)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    run.log = run.stdout + run.stderr
    return run


def dry_run_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, reason) of every job a dry run lists."""
    return re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    reason: (.*)$", output, flags=re.M)


def n_runs(workdir) -> int:
    return len(list((workdir / "results" / "models").iterdir()))


def test_second_run_has_nothing_to_do(quick_workdir, quick_config):
    run = run_ok(quick_workdir, "--configfile", str(quick_config))
    assert "Nothing to be done" in run.log


@pytest.mark.skipif(
    not missing_binaries(), reason="test_slurm.py::test_outputs_equal_a_local_run compares a second workdir"
)
def test_same_seed_same_results_in_a_second_workdir(quick_workdir, quick_config, tmp_path):
    """Two CPU trainings with the same seed, each from its own acquire: identical data; weights,
    predictions and metrics equal to within conftest.RESULT_*TOL (the whole default target, so new
    rules are covered by the file list). Where SLURM is installed, the cluster run is that second workdir."""
    run_ok(tmp_path, "--configfile", str(quick_config))
    compared = assert_same_results(quick_workdir, tmp_path)
    print(f"\nsecond workdir, largest differences: {compared['worst']}")
    assert compared["tsv"] >= 4 and compared["parquet"] >= 3 and compared["models"] >= 2


def test_forcerun_train_redoes_train_and_what_depends_on_it(quick_workdir, quick_config):
    dry = run_ok(quick_workdir, "--configfile", str(quick_config), "--forcerun", "train", "--dry-run")
    counts, n = job_counts(dry.log), n_runs(quick_workdir)
    assert counts["train"] == n and counts["predict"] == 2 * n and counts["evaluate"] == n, counts
    assert "acquire" not in counts and "preprocess" not in counts


def test_until_evaluate_stops_before_later_stages(quick_workdir, quick_config):
    dry = run_ok(
        quick_workdir, "--configfile", str(quick_config), "--forcerun", "train", "--until", "evaluate", "--dry-run"
    )
    assert set(job_counts(dry.log)) == {"train", "predict", "evaluate"}


def test_a_target_file_builds_only_what_it_needs(quick_workdir, quick_config):
    run = sorted(p.name for p in (quick_workdir / "results" / "models").iterdir())[0]
    dry = run_ok(
        quick_workdir,
        "--configfile",
        str(quick_config),
        "--forcerun",
        "train",
        "--dry-run",
        f"results/metrics/{run}/overall.tsv",
    )
    assert job_counts(dry.log) == {"train": 1, "predict": 1, "evaluate": 1}


def test_evaluation_parameter_reruns_only_evaluate(quick_workdir, quick_config, tmp_path):
    workdir = copy_workdir(quick_workdir, tmp_path / "workdir")
    changed = tmp_path / "changed.yaml"
    cfg = yaml.safe_load(quick_config.read_text())
    cfg["evaluate"]["n_boot"] += 10
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is part of a dict param

    dry = run_ok(workdir, "--configfile", str(changed), "--dry-run")
    counts = job_counts(dry.log)
    assert counts.get("evaluate") == n_runs(workdir), counts
    assert not UPSTREAM & set(counts), counts
    for rule, reason in dry_run_jobs(dry.log):
        if rule == "evaluate":
            assert "Params have changed" in reason, reason
        else:  # only what reads evaluate's outputs follows (rule all, later report stages)
            assert reason.startswith("Input files updated by another job"), (rule, reason)

    # --list-changes params: snakemake 9.27.1 also prints one output of every job whose params did
    # not change (ParamsChange iterates its files even when empty), so compare with the listing
    # for the unchanged configuration: what the change adds are evaluate's outputs only.
    def listing(config):
        out = run_ok(workdir, "--configfile", str(config), "--list-changes", "params").stdout.split()
        return {p for p in out if p.startswith("results/")}

    added = listing(changed) - listing(quick_config)
    assert added and all(p.startswith("results/metrics/") for p in added), added

    # and for real: data, models and predictions untouched, the metric tables rewritten
    kept = {
        f: (workdir / "results" / f).stat().st_mtime_ns
        for f in result_files(workdir)
        if f.startswith(("data/", "models/", "predictions/"))
    }
    before = {p: p.stat().st_mtime_ns for p in (workdir / "results" / "metrics").rglob("overall.tsv")}
    run = run_ok(workdir, "--configfile", str(changed))
    assert job_counts(run.log).get("evaluate") == n_runs(workdir)
    assert not UPSTREAM & set(job_counts(run.log))
    assert {f: (workdir / "results" / f).stat().st_mtime_ns for f in kept} == kept
    assert all(p.stat().st_mtime_ns > t for p, t in before.items())


def test_explain_records_reruns_explain_not_the_checks(quick_workdir, quick_config, tmp_path):
    """Each rule gets only the settings its stage reads: which test records the explain stage picks is
    no business of the checks rules, counterfactuals or explain_record, so editing explain.records reruns explain
    (and what reads its outputs: expert_rules reuses its maps, with its own params unchanged), never
    sanity, seed_consistency or explain_record."""
    changed = tmp_path / "changed.yaml"
    cfg = yaml.safe_load(quick_config.read_text())
    cfg["explain"]["records"] += 1
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))
    dry = run_ok(quick_workdir, "--configfile", str(changed), "--dry-run")
    jobs = dry_run_jobs(dry.log)
    params_changed = {rule for rule, reason in jobs if "Params have changed" in reason}
    assert "explain" in params_changed, jobs
    assert "expert_rules" not in params_changed, jobs
    assert not {"sanity", "seed_consistency", "explain_record", "counterfactuals"} & {rule for rule, _ in jobs}, jobs
    assert not UPSTREAM & {rule for rule, _ in jobs}, jobs
