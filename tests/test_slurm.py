"""profiles/slurm on a real SLURM: a single-node cluster on loopback (tests/slurm_cluster.py).

The whole default target of the quick synthetic configuration (conftest.quick_config) is run
through `--profile profiles/slurm`: every job is an sbatch job, polled with squeue and run by
slurmd (the plugin's job step runs it with srun). Its results must equal those of a local run of
the same configuration. Train runs on the CPU there (device: cpu, so the rule asks for no GPU);
that the profile asks SLURM for a GPU when a run may use one is checked separately, on a copy of
the finished workdir: this node has none, so SLURM refuses that submission, naming the sbatch call.

Skipped only where the SLURM daemons or munge are not installed (`.ci/run` installs them).
"""

from __future__ import annotations

import os
import re
import time
from types import SimpleNamespace

import pytest
import yaml
from conftest import assert_same_results, copy_workdir, job_counts
from slurm_cluster import SlurmCluster, job_ids_in, missing_binaries
from test_workflow import REPO, snakemake

pytestmark = pytest.mark.slow

PROFILE = REPO / "profiles" / "slurm"
DEFAULT_PARTITION, CPU_PARTITION, GPU_PARTITION = "debug", "cpu", "gpu"  # all on the one node
# The profile's values are for real clusters; here: poll every second (the plugin adds 10 s per
# poll that sees no job finish), keep the SLURM logs of successful jobs for the checks below,
# fail at once instead of retrying, and --verbose for the plugin's "sbatch call:" lines.
TEST_ARGS = (
    "--profile",
    str(PROFILE),
    "--jobs",
    "4",
    "--retries",
    "0",
    "--latency-wait",
    "10",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
    "--slurm-keep-successful-logs",
    "--verbose",
)


@pytest.fixture(scope="module")
def cluster():
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"SLURM is not installed (no {', '.join(missing)}): `apt-get install slurm-wlm munge` (.ci/run does)"
        )
    c = SlurmCluster(partition=DEFAULT_PARTITION, extra_partitions=(CPU_PARTITION, GPU_PARTITION))
    try:
        with c:
            yield c
    finally:
        c.cleanup()


def submit(cluster, workdir, *args, **env):
    """test_workflow.snakemake with the cluster's environment (SLURM_CONF, PATH) and `env`."""
    with pytest.MonkeyPatch.context() as mp:
        own = {k: v for k, v in cluster.env.items() if not k.startswith("ECGXAI_SLURM_")}  # only `env`'s
        wanted = {**own, **env}
        for key in set(os.environ) - set(wanted):
            mp.delenv(key)
        for key, value in wanted.items():
            mp.setenv(key, value)
        started = time.monotonic()
        run = snakemake(workdir, *args)
    run.seconds = time.monotonic() - started
    run.log = run.stdout + run.stderr
    return run


def sbatch_calls(log: str) -> dict[str, str]:
    """The plugin's debug lines "sbatch call: ..." by job comment (rule_<name>[_wildcards_<w>])."""
    calls = re.findall(r"sbatch call: (sbatch .*)", log)
    return {re.search(r"--comment (\S+)", c).group(1): c for c in calls}


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, quick_config):
    wd = tmp_path_factory.mktemp("slurm")
    run = submit(cluster, wd, "--configfile", str(quick_config), *TEST_ARGS, ECGXAI_SLURM_PARTITION=CPU_PARTITION)
    assert run.returncode == 0, (
        run.log[-6000:] + "\n" + cluster.log_tail("slurmctld") + "\n" + cluster.log_tail("slurmd")
    )
    ids = job_ids_in(run.log)
    print(
        f"\nSLURM run of the quick synthetic DAG: {run.seconds:.0f} s, {len(ids)} sbatch jobs "
        f"(SLURM ids {', '.join(ids)})"
    )
    return SimpleNamespace(workdir=wd, log=run.log, seconds=run.seconds, ids=ids)


def test_every_job_went_through_sbatch(slurm_run, cluster, record_property):
    log, ids = slurm_run.log, slurm_run.ids
    record_property("slurm_run_seconds", round(slurm_run.seconds, 1))
    record_property("slurm_job_ids", ",".join(ids))
    started = re.findall(r"^rule (\w+):$", log, flags=re.M)  # jobs (not localrule `all`) Snakemake ran
    assert started and {"acquire", "preprocess", "train", "evaluate"} <= set(started)
    assert len(ids) == len(set(ids)) == len(started), (ids, started)

    # SLURM itself knows them: all COMPLETED, under the run's job name
    run_uuid = re.search(r"SLURM run ID: (\S+)", log).group(1)
    rows = cluster.run("squeue", "--states=all", "--noheader", "--format=%i|%j|%T").stdout.split()
    queue = {i: (name, state) for i, name, state in (r.split("|") for r in rows)}
    for i in ids:
        assert queue.get(i) == (run_uuid, "COMPLETED"), (i, queue.get(i))
    ctld_log = (cluster.logs / "slurmctld.log").read_text()
    submitted = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", ctld_log))
    assert set(ids) <= submitted
    # the plugin's per-job SLURM logs (kept with --slurm-keep-successful-logs)
    slurm_logs = {p.stem for p in (slurm_run.workdir / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(ids) <= slurm_logs

    # the profile's resources reached sbatch: partition from ECGXAI_SLURM_PARTITION, memory,
    # wall time and CPUs on every call; no GPU asked for with train.device: cpu
    calls = sbatch_calls(log)
    assert len(calls) == len(ids)
    for call in calls.values():
        assert f" -p {CPU_PARTITION} " in call, call
        assert re.search(r" --mem \d+ ", call) and re.search(r" -t \d+ ", call), call
        assert "--cpus-per-task=" in call and "--requeue" in call, call
        assert "--gpus" not in call and "--gres" not in call, call
    assert any(c.startswith("rule_train") for c in calls)


def test_outputs_equal_a_local_run(slurm_run, request):
    # conftest's local run, requested here so that a skipped cluster does not run it first
    # (pytest sets up session fixtures before module ones)
    quick_workdir = request.getfixturevalue("quick_workdir")
    compared = assert_same_results(slurm_run.workdir, quick_workdir)
    print(f"\nSLURM run vs local run, largest differences: {compared['worst']}")
    assert compared["tsv"] >= 4 and compared["parquet"] >= 3 and compared["models"] >= 2


def test_train_asks_slurm_for_a_gpu_when_the_run_may_use_one(slurm_run, cluster, quick_config, tmp_path):
    """train.device auto (the default): the rule declares gpu=1 and the profile turns it into
    `sbatch --gpus=1` in the GPU partition. The node has no GPU, so SLURM refuses the job at
    submission; the refusal and the call the plugin made are in the log."""
    wd = copy_workdir(slurm_run.workdir, tmp_path / "gpu")  # a copy: the attempt removes train's outputs
    config = yaml.safe_load(quick_config.read_text())
    config["train"]["device"] = "auto"
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump(config, sort_keys=False))  # same key order: only train changes
    run_name = sorted(p.name for p in (wd / "results" / "models").iterdir())[0]

    run = submit(
        cluster,
        wd,
        "--configfile",
        str(tmp_path / "gpu.yaml"),
        *TEST_ARGS,
        f"results/models/{run_name}/model.pt",
        ECGXAI_SLURM_PARTITION=CPU_PARTITION,
        ECGXAI_SLURM_GPU_PARTITION=GPU_PARTITION,
    )
    assert run.returncode != 0, "a GPU job was accepted on a node without GPUs"
    assert job_counts(run.log) == {"train": 1}, run.log[-3000:]
    assert "SLURM sbatch failed" in run.log
    assert "Requested node configuration is not available" in run.log  # sbatch's own refusal
    call = sbatch_calls(run.log)[f"rule_train_wildcards_{run_name}"]
    assert "--gpus=1" in call and f" -p {GPU_PARTITION} " in call, call
    assert not job_ids_in(run.log)  # nothing was queued
