"""Model checkpoints: a state_dict (torch.save) plus a JSON sidecar with what rebuilds the model.

Only plain state_dicts are loaded, with torch.load(weights_only=True): a file
holding a pickled model object, or any other pickle, is refused, so loading a
checkpoint can never execute code.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ptbxl_xai.model.hybrid import model_from_config

FORMAT = "ecgxai-state-dict-v1"


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    """write(file) into a temp file in the target folder, then os.replace: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path, model: nn.Module, hparams: dict, label_names: Sequence[str]) -> None:
    """Write path (state_dict) and path.with_suffix('.json') (hparams, label_names, n_classes, torch version).

    hparams are the model_from_config hyper-parameters, so load_checkpoint can
    rebuild the architecture; they must be JSON-serialisable.
    """
    path = Path(path)
    label_names = [str(s) for s in label_names]
    n_classes = getattr(model, "n_classes", len(label_names))
    if len(label_names) != n_classes:
        raise ValueError(f"{len(label_names)} label names for a model with {n_classes} classes")
    meta = {
        "format": FORMAT,
        "hparams": dict(hparams),
        "label_names": label_names,
        "n_classes": int(n_classes),
        "torch_version": torch.__version__,
    }
    text = json.dumps(meta, indent=2, sort_keys=True)  # fails early on non-JSON hparams
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _atomic_write(path, lambda f: torch.save(state, f))
    _atomic_write(sidecar_path(path), lambda f: f.write(text.encode("utf-8")))


def _model_schema() -> dict:
    """The config schema's `model` definition: the one home of hyper-parameter types and ranges."""
    import yaml

    schema = yaml.safe_load((Path(__file__).parents[1] / "resources" / "config.schema.yaml").read_text())
    return {"$ref": "#/$defs/model", "$defs": schema["$defs"]}


def validate_sidecar(meta: Any, side: Path) -> tuple[dict, int]:
    """(hparams, n_classes) of a sidecar after checking every field; ValueError naming `side` otherwise."""
    import jsonschema

    def bad(what: str) -> ValueError:
        return ValueError(f"checkpoint sidecar {side}: {what}")

    if not isinstance(meta, dict):
        raise bad(f"a JSON object is needed, found {type(meta).__name__}")
    missing = sorted({"hparams", "n_classes", "label_names"} - set(meta))
    if missing:
        raise bad(f"missing {missing}")
    if meta.get("format", FORMAT) != FORMAT:
        raise bad(f"format {meta['format']!r}, expected {FORMAT!r}")
    n_classes, names, hparams = meta["n_classes"], meta["label_names"], meta["hparams"]
    if type(n_classes) is not int or n_classes < 1:
        raise bad(f"n_classes {n_classes!r} is not a positive integer")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise bad("label_names must be a list of non-empty strings")
    if len(names) != n_classes:
        raise bad(f"{len(names)} label names for n_classes {n_classes}")
    if len(set(names)) != len(names):
        raise bad(f"repeated label names {sorted({n for n in names if names.count(n) > 1})}")
    if not isinstance(hparams, dict):
        raise bad(f"hparams must be a JSON object, found {type(hparams).__name__}")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_model_schema()).iter_errors(hparams))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "hparams"
        raise bad(f"hparams {where}: {error.message}")
    return hparams, n_classes


def load_checkpoint(path, map_location="cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from the sidecar and load the state_dict; returns (model in eval mode, sidecar dict)."""
    path = Path(path)
    side = sidecar_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not side.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} has no JSON sidecar {side} (hparams and label names); "
            "write checkpoints with ptbxl_xai.model.checkpoint.save_checkpoint"
        )
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"checkpoint sidecar {side} is not valid JSON: {e}") from e
    hparams, n_classes = validate_sidecar(meta, side)

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message names the offending global (e.g. the model class); keep that line only
        detail = next((ln.strip().split(" was not")[0] for ln in str(e).splitlines() if "Unsupported" in ln), "")
        raise ValueError(
            f"refusing to load {path}: only state_dict checkpoints are accepted; torch.load("
            f"weights_only=True) rejected it (a pickled model object or other pickle). Save with "
            f"ptbxl_xai.model.checkpoint.save_checkpoint. {detail}".rstrip()
        ) from e
    except Exception as e:  # not a torch file at all (truncated, text, ...)
        raise ValueError(f"cannot read checkpoint {path} as a torch state_dict: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"refusing to load {path}: only state_dict checkpoints (a dict of name -> tensor) "
            f"are accepted, found {type(state).__name__}"
        )

    try:
        model = model_from_config(hparams, n_classes)
    except (ValueError, TypeError) as e:
        raise ValueError(f"checkpoint sidecar {side}: hparams do not build a model: {e}") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not match the architecture in {side}: {e}") from e
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()
    return model, meta
