"""Config helpers shared by the Snakefile, the scripts and the tests (no Snakemake import)."""

from __future__ import annotations

from .ptbxl import bundled_statements
from .signal import FilterSettings

SCHEMA = bundled_statements().parent / "config.schema.yaml"


def filter_settings(pre: dict) -> FilterSettings:
    """FilterSettings from the `preprocess` section of the config."""
    bp, bl = pre.get("bandpass", {}), pre.get("baseline", {})
    return FilterSettings(
        rate=int(pre.get("sampling_rate", 100)),
        bandpass=bool(bp.get("enabled", True)), low_hz=float(bp.get("low_hz", 0.5)),
        high_hz=float(bp.get("high_hz", 40.0)), bandpass_order=int(bp.get("order", 4)),
        baseline=bool(bl.get("enabled", False)), baseline_hz=float(bl.get("cutoff_hz", 0.5)),
        baseline_order=int(bl.get("order", 2)),
        zscore=bool(pre.get("zscore", True)), length_s=float(pre.get("length_s", 10.0)),
        min_length_s=float(pre.get("min_length_s", 10.0)), crop=str(pre.get("crop", "center")),
        n_bins=int(pre.get("n_bins", 20)),
    )


def coerce_types(config, schema: dict, root: dict | None = None):
    """Turn strings into the numbers/booleans/nulls the schema asks for, in place.

    `snakemake --config key='{a: 1}'` parses nested values as strings; without this, every
    nested number given on the command line would fail validation.
    """
    root = root if root is not None else schema
    if "$ref" in schema:  # local references only: "#/$defs/name"
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(config, dict):
        subs = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in config.items():
            sub = subs.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                config[key] = coerce_types(value, sub, root)
        return config
    if isinstance(config, list) and isinstance(schema.get("items"), dict):
        return [coerce_types(v, schema["items"], root) for v in config]
    if not isinstance(config, str):
        return config
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    for t, convert in (("null", _null), ("boolean", _bool), ("integer", int), ("number", float)):
        if t in types:
            try:
                return convert(config)
            except ValueError:
                pass
    return config


def _null(s: str):
    if s.lower() in ("null", "none", "~"):
        return None
    raise ValueError(s)


def _bool(s: str) -> bool:
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    raise ValueError(s)


# The PTB-XL benchmark protocol (Strodthoff et al. 2021): folds 1-8 train, 9 validation, 10 test.
SPLITS = {"train": tuple(range(1, 9)), "val": (9,), "test": (10,)}


def run_config(config: dict, run: str) -> dict:
    """The effective `model` and `train` sections of a named run: defaults with its overrides."""
    if run not in config["runs"]:
        raise KeyError(f"run {run!r} is not defined under `runs` in the config (have {sorted(config['runs'])})")
    overrides = config["runs"][run] or {}
    merged = {section: {**config[section], **(overrides.get(section) or {})} for section in ("model", "train")}
    run_model = overrides.get("model") or {}
    if run_model.get("architecture", "hybrid") != config["model"].get("architecture", "hybrid"):
        merged["model"] = dict(run_model)  # another architecture: the default's hyper-parameters do not apply
    return merged
