"""The app's configuration: the workflow's config files, merged and validated as the Snakefile does."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import jsonschema
import yaml

from ptbxl_xai.config import SCHEMA, coerce_types


def merge(base: dict, over: dict) -> dict:
    """`over` merged into `base` key by key (nested dicts merged, anything else replaced), as Snakemake does."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _defaults(config, schema: dict):
    """Fill keys the schema gives a `default` for (only where absent)."""
    if not isinstance(config, dict):
        return config
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))  # a copy
        if key in config:
            _defaults(config[key], sub)
    return config


def load_config(paths) -> dict:
    """config files (later ones merged over earlier ones), coerced, validated and defaulted."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no config file given")
    config: dict = {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: config file not found; run `ecgxai serve` in the workflow folder (beside config.yaml) "
                "or pass --configfile"
            )
        config = merge(config, yaml.safe_load(path.read_text()) or {})
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    coerce_types(config, schema)
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(map(str, exc.absolute_path)) or "(top level)"
        raise ValueError(f"config {' + '.join(map(str, paths))}: {where}: {exc.message}") from None
    return _defaults(config, schema)


@dataclass(frozen=True)
class ServeSettings:
    """How the server runs: config `serve` (defaults in config.yaml and the schema); the command
    line overrides host, port and the upload cap."""

    host: str
    port: int
    max_upload_mb: float
    explain_workers: int
    threads: int
    explain_process: bool
    explain_nice: int
    predict_process: bool
    predict_workers: int
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    max_connections: int
    max_buffered_mb: float
    max_queued_explanations: int
    body_timeout_s: float
    header_timeout_s: float

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def max_buffered_bytes(self) -> int:
        return int(self.max_buffered_mb * 2**20)

    @classmethod
    def from_config(cls, serve: dict, **overrides) -> ServeSettings:
        keys = [f.name for f in fields(cls)]  # every setting is a `serve` key of the config
        values = {k: serve[k] for k in keys}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["allowed_hosts"], values["allowed_origins"] = (
            tuple(values["allowed_hosts"]),
            tuple(values["allowed_origins"]),
        )
        return cls(**values)
