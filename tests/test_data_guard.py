"""The data-config guard: a command with another data config is refused before any job runs, and
nothing that was built is deleted or touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_workflow import SYNTHETIC, snakemake

from ptbxl_xai.config import check_data_config, data_identity

TARGET = "results/data/quality.tsv"  # acquire + preprocess: enough to have something to lose


def _snapshot(workdir: Path) -> dict[str, tuple[int, int]]:
    """Every file outside .snakemake/ (Snakemake's own run logs), with its mtime and size."""
    return {
        p.relative_to(workdir).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in workdir.rglob("*")
        if p.is_file() and ".snakemake" not in p.relative_to(workdir).parts
    }


def _config(path: Path, data: dict) -> str:
    """tests/config/synthetic.yaml with its data section updated (a later --configfile replaces it)."""
    config = yaml.safe_load(SYNTHETIC.read_text())
    for key, value in data.items():
        config["data"][key] = {**config["data"].get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("guard")
    small = _config(wd.parent / "small.yaml", {"synthetic": {"n_records": 80}})
    run = snakemake(wd, TARGET, "--configfile", small)
    assert run.returncode == 0, run.stderr[-3000:]
    return wd


@pytest.mark.slow  # builds acquire + preprocess with Snakemake
def test_another_data_config_is_refused_and_nothing_is_touched(built, tmp_path):
    before = _snapshot(built)
    assert "results/data/source.json" in before and TARGET in before
    local = _config(tmp_path / "local.yaml", {"source": "local", "path": str(built / "resources/ptbxl-synthetic")})
    for target in ([TARGET], []):  # the same target and the default one
        run = snakemake(built, *target, "--configfile", local)
        out = run.stdout + run.stderr
        assert run.returncode != 0
        assert "source: synthetic" in out and "source: local" in out, out[-2000:]
        assert "delete results/data/source.json" in out and "--configfile" in out
        assert "rule acquire" not in out and "Job stats" not in out  # refused before any job
    assert _snapshot(built) == before  # same files, same mtimes, same sizes


@pytest.mark.slow  # builds acquire + preprocess with Snakemake
def test_same_data_with_other_download_settings_reruns_nothing(built, tmp_path):
    knobs = _config(
        tmp_path / "knobs.yaml", {"synthetic": {"n_records": 80}, "physionet": {"retries": 9, "connections": 2}}
    )
    run = snakemake(built, "-n", TARGET, "--configfile", knobs)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_guard_reads_the_manifest_and_names_both_configs(tmp_path):
    manifest = tmp_path / "source.json"
    data = {"source": "local", "path": str(tmp_path / "ptbxl")}
    check_data_config(data, str(manifest))  # nothing built yet: nothing to guard
    manifest.write_text(json.dumps({"source": "local", "data": data_identity(data)}))
    check_data_config(data, str(manifest))
    with pytest.raises(ValueError, match=r"built from data \{source: local.*asks for data \{source: physionet"):
        check_data_config({"source": "physionet", "path": "resources/ptbxl"}, str(manifest))
    # a manifest written before the data identity was recorded still guards source and path
    manifest.write_text('{"source": "local", "root": "%s"}' % (tmp_path / "ptbxl"))
    check_data_config(data, str(manifest))
    with pytest.raises(ValueError, match="Nothing was run or deleted"):
        check_data_config({**data, "path": str(tmp_path / "other")}, str(manifest))


def test_the_same_folder_spelled_differently_is_the_same_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "source.json"
    manifest.write_text(json.dumps({"source": "local", "data": data_identity({"source": "local", "path": "ptbxl/"})}))
    for spelling in ("ptbxl", "./ptbxl", str(tmp_path / "ptbxl")):
        check_data_config({"source": "local", "path": spelling}, str(manifest))


@pytest.mark.slow  # builds acquire + preprocess with Snakemake
def test_a_copied_workdir_keeps_its_relative_data(built, tmp_path):
    """A copy of the working directory (another absolute path) is not another data config."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)
    small = _config(tmp_path / "small.yaml", {"synthetic": {"n_records": 80}})
    run = snakemake(copy, "-n", TARGET, "--configfile", small)
    assert run.returncode == 0, run.stderr[-2000:]
