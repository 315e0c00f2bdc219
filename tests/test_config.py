"""The config contract: schema catches typos and bad values; conda envs pin what pyproject pins."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import tomllib
import yaml

from ptbxl_xai.config import SCHEMA, coerce_types, filter_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(SCHEMA.read_text())


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_shipped_configs_are_valid(schema, config):
    jsonschema.validate(config, schema)
    for path in (REPO / "tests" / "config").glob("*.yaml"):
        merged = copy.deepcopy(config)
        _merge(merged, yaml.safe_load(path.read_text()))
        jsonschema.validate(merged, schema)
        filter_settings(merged["preprocess"])


def _merge(base, new):
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def test_typo_in_a_key_is_named(schema, config):
    bad = copy.deepcopy(config)
    bad["preprocess"]["bandpss"] = {"low_hz": 1}
    with pytest.raises(jsonschema.ValidationError, match="'bandpss' was unexpected"):
        jsonschema.validate(bad, schema)


def test_bad_value_is_named(schema, config):
    bad = copy.deepcopy(config)
    bad["data"]["source"] = "physionett"
    with pytest.raises(jsonschema.ValidationError) as err:
        jsonschema.validate(bad, schema)
    assert list(err.value.absolute_path) == ["data", "source"]


def test_command_line_strings_become_typed_values(schema):
    cfg = {
        "preprocess": {"n_bins": "25", "bandpass": {"enabled": "false", "high_hz": "35"}},
        "data": {"physionet": {"archive_sha256": "null"}, "path": "123"},
    }
    coerce_types(cfg, schema)
    assert cfg["preprocess"] == {"n_bins": 25, "bandpass": {"enabled": False, "high_hz": 35.0}}
    assert cfg["data"]["physionet"]["archive_sha256"] is None
    assert cfg["data"]["path"] == "123"  # a string stays a string where the schema wants one
    nested = {
        "train": {"epochs": "2", "focal_alpha": "null"},
        "model": {"conv_channels": ["8", "16"]},
        "runs": {"quick": {"train": {"epochs": "1"}}},
    }
    coerce_types(nested, schema)  # through $ref and per-run sections
    assert nested == {
        "train": {"epochs": 2, "focal_alpha": None},
        "model": {"conv_channels": [8, 16]},
        "runs": {"quick": {"train": {"epochs": 1}}},
    }


def test_every_config_key_is_commented(config):
    text = (REPO / "config.yaml").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*[a-z_0-9]+:\s*\S", line):  # a key with a value (sections aside)
            above = lines[i - 1].strip() if i else ""
            assert "#" in line or above.startswith("#"), f"config.yaml key without a comment: {line!r}"


def test_conda_envs_pin_what_pyproject_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(d.split("==") for d in deps)
    for env in (REPO / "envs").glob("*.yaml"):
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for line in pip:
            name, version = line.split("==")
            assert pins.get(name) == version, f"{env.name}: {line} differs from pyproject.toml"


def test_ablation_runs_are_variants_times_seeds_unless_a_variant_names_its_own(schema, config):
    """A costly baseline can train one seed while the hybrid family trains three (issue: numbers)."""
    from ptbxl_xai.config import expand_runs

    ablation = copy.deepcopy(config["ablation"])
    ablation.update(grid=["hybrid", "inception1d"], seeds=[0, 1, 2], scheme="crossval")
    ablation["variants"]["inception1d"]["seeds"] = [0]
    jsonschema.validate({**config, "ablation": ablation}, schema)
    runs = expand_runs(ablation)
    assert list(runs) == ["abl-hybrid-s0", "abl-hybrid-s1", "abl-hybrid-s2", "abl-inception1d-s0"]
    assert runs["abl-inception1d-s0"]["model"]["architecture"] == "inception1d"
    assert {r["train"]["seed"] for r in runs.values()} == {0, 1, 2} and runs["abl-hybrid-s2"]["scheme"] == "crossval"
    assert all(r["train"]["label_set"] == ablation["label_set"] for r in runs.values())
