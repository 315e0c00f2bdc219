"""One source of defaults: config.yaml and its schema. Every default written again in the package equals it."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from ptbxl_xai.config import SCHEMA, FilterSettings, filter_settings

REPO = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def _schema_defaults(schema: dict, root: dict, at: tuple = ()):
    """(key path, default) for every schema property that declares one."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    for key, sub in (schema.get("properties") or {}).items():
        if "default" in sub and sub["default"] != {}:
            yield at + (key,), sub["default"]
        yield from _schema_defaults(sub, root, at + (key,))


def _config_value(path: tuple):
    node = CONFIG
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return KeyError
        node = node[key]
    return node


def test_schema_defaults_equal_config_yaml():
    schema = yaml.safe_load(SCHEMA.read_text())
    checked = 0
    for path, default in _schema_defaults(schema, schema):
        value = _config_value(path)
        if value is not KeyError:
            assert value == default, f"{'.'.join(path)}: config.yaml says {value!r}, the schema default {default!r}"
            checked += 1
    assert checked > 20


def _default(fn, name: str):
    return inspect.signature(fn).parameters[name].default


def _field_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def test_train_config_defaults_are_the_config_train_section():
    from ptbxl_xai.model.training import TrainConfig

    fields = _field_defaults(TrainConfig)
    train = {k: v for k, v in CONFIG["train"].items() if k != "label_set"}  # label_set: data, not the loop
    assert set(fields) - set(train) == {"num_threads"}, "a TrainConfig field the config does not document"
    for key, value in train.items():
        assert fields[key] == value, f"TrainConfig.{key} = {fields[key]!r}, config.yaml train.{key} = {value!r}"


def test_filter_settings_defaults_are_the_config_preprocess_section():
    assert FilterSettings() == filter_settings(CONFIG["preprocess"])


def test_hybrid_model_defaults_are_the_config_model_section():
    from ptbxl_xai.model.hybrid import HybridECGNet

    for key, value in CONFIG["model"].items():
        if key == "architecture":
            continue
        default = _default(HybridECGNet.__init__, key)
        default = list(default) if isinstance(default, tuple) else default
        assert default == value, f"HybridECGNet({key}={default!r}), config.yaml model.{key} = {value!r}"


@pytest.mark.parametrize(
    "section, settings",
    [
        ("shap", "ptbxl_xai.explain.methods.shap_explainer.ShapConfig"),
        ("lime", "ptbxl_xai.explain.methods.lime_explainer.LimeConfig"),
    ],
)
def test_explainer_settings_defaults_are_the_config_explain_section(section, settings):
    import importlib

    module, name = settings.rsplit(".", 1)
    fields = _field_defaults(getattr(importlib.import_module(module), name))
    for key, value in CONFIG["explain"][section].items():
        assert fields[key] == value, f"{name}.{key} = {fields[key]!r}, config.yaml explain.{section}.{key} = {value!r}"


def test_explain_and_evaluate_function_defaults_are_the_config_values():
    from ptbxl_xai.evaluation.metrics import evaluate
    from ptbxl_xai.explain.correlate import correlations_from_attributions
    from ptbxl_xai.explain.methods.explain_records import FAITHFULNESS_DEFAULTS, explain_records
    from ptbxl_xai.explain.select import labels_to_explain

    explain, pre = CONFIG["explain"], CONFIG["preprocess"]
    pairs = {
        "faithfulness points": (FAITHFULNESS_DEFAULTS["points"], explain["faithfulness"]["points"]),
        "faithfulness step": (FAITHFULNESS_DEFAULTS["step"], explain["faithfulness"]["step"]),
        "explain_records background": (_default(explain_records, "background"), explain["background"]),
        "explain_records blur_sigma_s": (_default(explain_records, "blur_sigma_s"), explain["blur_sigma_s"]),
        "explain_records n_boot": (_default(explain_records, "n_boot"), explain["n_boot"]),
        "explain_records n_bins": (_default(explain_records, "n_bins"), pre["n_bins"]),
        "explain_records rate": (_default(explain_records, "rate"), pre["sampling_rate"]),
        "correlations n_boot": (_default(correlations_from_attributions, "n_boot"), explain["n_boot"]),
        "labels_to_explain top_k": (_default(labels_to_explain, "top_k"), explain["top_k"]),
        "evaluate n_boot": (_default(evaluate, "n_boot"), CONFIG["evaluate"]["n_boot"]),
        "evaluate ci": (_default(evaluate, "ci"), CONFIG["evaluate"]["ci"]),
        "evaluate seed": (_default(evaluate, "seed"), CONFIG["evaluate"]["seed"]),
    }
    drifted = {k: v for k, v in pairs.items() if v[0] != v[1]}
    assert not drifted, f"package default != config.yaml: {drifted}"
