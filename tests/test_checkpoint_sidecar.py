"""Checkpoint sidecars are validated field by field, and every error names the sidecar file."""

from __future__ import annotations

import json
import re

import pytest

from ptbxl_xai.model.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from ptbxl_xai.model.hybrid import model_from_config

SMALL = {"conv_channels": [8, 16], "kernel_sizes": [5, 3], "pool_sizes": [4, 2], "lstm_hidden": 8, "attention_dim": 8}


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, model_from_config(SMALL, 3), SMALL, ["CD", "MI", "NORM"])
    return path


def _edit(path, change):
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    change(meta)
    side.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda m: m.update(label_names=["CD", "MI"]), "2 label names for n_classes 3"),
        (lambda m: m.update(n_classes=4, label_names=["CD", "MI", "NORM", "X"]), "does not match the architecture"),
        (lambda m: m.update(n_classes="3"), "n_classes '3' is not a positive integer"),
        (lambda m: m.update(n_classes=True), "n_classes True is not a positive integer"),
        (lambda m: m.update(n_classes=0, label_names=[]), "n_classes 0 is not a positive integer"),
        (lambda m: m.update(label_names=["CD", "CD", "NORM"]), "repeated label names ['CD']"),
        (lambda m: m.update(label_names="CD,MI,NORM"), "label_names must be a list"),
        (lambda m: m.pop("label_names"), "missing ['label_names']"),
        (lambda m: m.update(format="something-else"), "format 'something-else'"),
        (lambda m: m["hparams"].update(dropout=1.5), "hparams dropout: 1.5 is greater than the maximum of 1"),
        (lambda m: m["hparams"].update(lstm_hidden=-8), "hparams lstm_hidden: -8 is less than the minimum of 1"),
        (lambda m: m["hparams"].update(conv_channels=[8, "16"]), "hparams conv_channels/1: '16' is not of type"),
        (lambda m: m["hparams"].update(pooling="max"), "hparams pooling: 'max' is not one of"),
        (lambda m: m["hparams"].update(architecture="resnet"), "hparams architecture: 'resnet' is not one of"),
        (lambda m: m["hparams"].update(kernels=3), "Additional properties are not allowed ('kernels'"),
        (lambda m: m.update(hparams=[1, 2]), "hparams must be a JSON object"),
        (lambda m: m["hparams"].update(kernel_sizes=[5]), "hparams do not build a model"),
    ],
)
def test_a_bad_sidecar_is_refused_naming_the_file(saved, change, reason):
    _edit(saved, change)
    with pytest.raises(ValueError, match=re.escape(str(sidecar_path(saved)))) as err:
        load_checkpoint(saved)
    assert reason in str(err.value)


def test_a_sidecar_that_is_not_json_is_named(saved):
    sidecar_path(saved).write_text('{"hparams": ')
    with pytest.raises(
        ValueError, match=rf"checkpoint sidecar {re.escape(str(sidecar_path(saved)))} is not valid JSON"
    ):
        load_checkpoint(saved)


def test_a_valid_sidecar_loads(saved):
    model, meta = load_checkpoint(saved)
    assert meta["label_names"] == ["CD", "MI", "NORM"] and model.n_classes == 3
