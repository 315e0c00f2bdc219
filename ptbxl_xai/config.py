"""Configuration logic the Snakefile needs at parse time: schema coercion, runs, filter settings, output names.

Standard library only (no numpy, torch or plotting), so `snakemake -n` parses fast; the
scripts and tests import the same definitions.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from ptbxl_xai.layout import RESULTS, Layout

SCHEMA = Path(str(resources.files("ptbxl_xai") / "resources" / "config.schema.yaml"))

# Files the render rules write per run (file name = plotting/table function name).
PERFORMANCE_FIGURES = ("roc_pr_curves", "training_curves", "per_label_bars", "error_analysis", "reliability_diagram")
PERFORMANCE_TABLES = ("table1_overall", "per_label_table")
EXPLANATION_FIGURES = (
    "fig1_attention_distribution",
    "fig2_shap_heatmap",
    "fig3_shap_attention_alignment",
    "faithfulness_curves",
    "beat_attribution_shap",
    "beat_attribution_lime",
    "beat_attribution_attention",
)
EXPLANATION_TABLES = ("correlation_table", "faithfulness_table", "background_table")


# preprocess.normalize: per-record z-score, or one per-lead scaler fitted on the training folds
NORMALIZATIONS = ("record", "train_standard")


@dataclass(frozen=True)
class FilterSettings:
    """What preprocessing does to each record; written into the Parquet schema metadata."""

    rate: int = 100
    bandpass: bool = True
    low_hz: float = 0.5
    high_hz: float = 40.0
    bandpass_order: int = 4
    baseline: bool = False  # a separate high-pass; redundant while the band-pass is on
    baseline_hz: float = 0.5
    baseline_order: int = 2
    zscore: bool = True
    normalize: str = "record"  # record (per-record z-score) | train_standard (per-lead scaler, folds 1-8)
    length_s: float = 10.0
    min_length_s: float = 10.0
    crop: str = "center"  # "center" or "start", for records longer than length_s
    n_bins: int = 20

    def __post_init__(self):
        nyquist = self.rate / 2
        if self.bandpass and not 0 < self.low_hz < self.high_hz < nyquist:
            raise ValueError(
                f"band-pass {self.low_hz}-{self.high_hz} Hz must satisfy 0 < low < high < "
                f"Nyquist ({nyquist} Hz at {self.rate} Hz)"
            )
        if self.baseline and not 0 < self.baseline_hz < nyquist:
            raise ValueError(f"baseline cut-off {self.baseline_hz} Hz must lie in (0, {nyquist}) Hz")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, not {self.normalize!r}")
        if self.crop not in ("center", "start"):
            raise ValueError(f"crop must be 'center' or 'start', not {self.crop!r}")
        if self.samples % self.n_bins:
            raise ValueError(f"{self.samples} samples do not split into {self.n_bins} equal bins")

    @property
    def samples(self) -> int:
        return int(round(self.length_s * self.rate))

    @property
    def min_samples(self) -> int:
        return int(round(self.min_length_s * self.rate))

    def as_dict(self) -> dict:
        return asdict(self)


def filter_settings(pre: dict) -> FilterSettings:
    """FilterSettings from the `preprocess` section of a validated config (the schema fills in defaults)."""
    bp, bl = pre["bandpass"], pre["baseline"]
    return FilterSettings(
        rate=int(pre["sampling_rate"]),
        bandpass=bool(bp["enabled"]),
        low_hz=float(bp["low_hz"]),
        high_hz=float(bp["high_hz"]),
        bandpass_order=int(bp["order"]),
        baseline=bool(bl["enabled"]),
        baseline_hz=float(bl["cutoff_hz"]),
        baseline_order=int(bl["order"]),
        zscore=bool(pre["zscore"]),
        normalize=str(pre.get("normalize", "record")),
        length_s=float(pre["length_s"]),
        min_length_s=float(pre["min_length_s"]),
        crop=str(pre["crop"]),
        n_bins=int(pre["n_bins"]),
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
FOLDS = tuple(range(1, 11))
SCHEMES = ("holdout", "crossval")


def cv_splits(test_fold: int) -> dict[str, tuple[int, ...]]:
    """Cross-validation split of one model: `test_fold` tests, the next fold (10 -> 1) validates, the rest trains."""
    test_fold = int(test_fold)
    if test_fold not in FOLDS:
        raise ValueError(f"test fold must be one of {FOLDS}, got {test_fold}")
    val = test_fold % len(FOLDS) + 1
    return {"train": tuple(f for f in FOLDS if f not in (test_fold, val)), "val": (val,), "test": (test_fold,)}


def run_scheme(config: dict, run: str) -> str:
    """holdout (folds 1-8 / 9 / 10) or crossval (ten models, pooled out-of-fold predictions) for a run."""
    return (config["runs"].get(run) or {}).get("scheme") or config["evaluate"].get("scheme", "holdout")


def run_normalize(config: dict, run: str) -> str:
    """The input normalisation a run trains on: its own `normalize`, else `preprocess.normalize`.
    An ablation run (abl-<variant>-s<seed>) is found from the `ablation` section where `runs` lacks it
    (the Snakefile adds them to `runs`; the app reads the config file as written)."""
    spec = (config.get("runs") or {}).get(run)
    if spec is None and str(run).startswith(PREFIX + "-") and config.get("ablation", {}).get("grid"):
        try:
            spec = expand_runs(config["ablation"]).get(run)
        except (ValueError, KeyError, TypeError):
            spec = None
    own = (spec or {}).get("normalize")
    return own or config["preprocess"].get("normalize", "record")


def data_path(config: dict, run: str | None = None, results: str = "results") -> str:
    """The preprocessed data folder a run reads (`results/data/<rate>hz`, the `preprocess` rule's).

    A run whose `normalize` differs from `preprocess.normalize` reads the same records renormalised
    (`results/data/<rate>hz-<normalize>`, the `renormalize` rule's), so an ablation of the
    normalisation compares models on identical records. Without z-scoring there is nothing to vary.
    """
    pre = config["preprocess"]
    rate = int(pre["sampling_rate"])
    wanted = run_normalize(config, run) if run is not None else pre.get("normalize", "record")
    if wanted == pre.get("normalize", "record"):
        return Layout(results).data(rate)
    if wanted not in NORMALIZATIONS:
        raise ValueError(f"run {run!r}: normalize must be one of {NORMALIZATIONS}, not {wanted!r}")
    if not pre.get("zscore", True):
        raise ValueError(f"run {run!r} sets normalize: {wanted}, which needs preprocess.zscore: true")
    return Layout(results).data(rate, wanted)


def run_config(config: dict, run: str) -> dict:
    """The effective `model` and `train` sections of a named run: defaults with its overrides."""
    if run not in config["runs"]:
        raise KeyError(f"run {run!r} is not defined under `runs` in the config (have {sorted(config['runs'])})")
    return merged_overrides(config, config["runs"][run] or {})


def variant_config(config: dict, variant: str) -> dict:
    """The effective `model` and `train` sections of an ablation variant (e.g. for the known-answer models)."""
    variants = config["ablation"]["variants"]
    if variant not in variants:
        raise KeyError(f"{variant!r} is not a variant under ablation.variants (have {sorted(variants)})")
    return merged_overrides(config, variants[variant] or {})


def known_answer_variant(config: dict, run: str, model: dict | None = None) -> str | None:
    """The known-answer model (a name of `known_answer.architectures`) built as `run` is (its `model` section,
    by default from the config's runs), or None: a run's methods are flagged from the planted benchmark of
    the same architecture."""
    if model is None:
        if run not in config.get("runs", {}):
            return None
        model = run_config(config, run)["model"]
    for variant in config.get("known_answer", {}).get("architectures", []):
        built = variant_config(config, variant)["model"] if variant in config["ablation"]["variants"] else None
        # the run's own hyper-parameters decide (a checkpoint's sidecar may name fewer keys than the config)
        if built is not None and all(built.get(k) == v for k, v in dict(model).items()):
            return variant
    return None


def merged_overrides(config: dict, overrides: dict) -> dict:
    """`model` and `train` with a run's or variant's overrides; another architecture replaces `model` whole."""
    merged = {section: {**config[section], **(overrides.get(section) or {})} for section in ("model", "train")}
    run_model = overrides.get("model") or {}
    if run_model.get("architecture", config["model"]["architecture"]) != config["model"]["architecture"]:
        merged["model"] = dict(run_model)  # another architecture: the default's hyper-parameters do not apply
    return merged


# Ablation grid -> named runs (abl-<variant>-s<seed>), added to `runs` by the Snakefile.
PREFIX = "abl"


def run_name(variant: str, seed: int) -> str:
    return f"{PREFIX}-{variant}-s{seed}"


def expand_runs(ablation: dict) -> dict[str, dict]:
    """{run name: {"model": {...}, "train": {...}}} (and the variant's `normalize`) for every variant and seed."""
    runs, variants = {}, ablation.get("variants") or {}
    unknown = [v for v in ablation["grid"] if v not in variants]
    if unknown:
        raise ValueError(f"ablation.grid names undefined variants {unknown}; defined: {sorted(variants)}")
    for variant in ablation["grid"]:
        overrides = variants[variant] or {}
        for seed in overrides.get("seeds") or ablation["seeds"]:  # a variant may train fewer seeds
            train = {**(overrides.get("train") or {}), "label_set": ablation["label_set"], "seed": int(seed)}
            runs[run_name(variant, seed)] = {"model": dict(overrides.get("model") or {}), "train": train}
            if overrides.get("normalize"):
                runs[run_name(variant, seed)]["normalize"] = overrides["normalize"]
            if ablation.get("scheme"):
                runs[run_name(variant, seed)]["scheme"] = ablation["scheme"]
    return runs


# The manifest of the acquire rule: which data results/ was built from.
DATA_MANIFEST = RESULTS.source_manifest()


def data_identity(data: dict) -> dict:
    """The part of the `data` config that decides which records results/ holds.

    Download settings (mirror, mode, retries, connections) are not part of it: every PhysioNet
    file is checked against SHA256SUMS.txt, so any mirror gives the same data.
    """
    # as given: a relative path is relative to the working directory, which may move (a copy)
    ident = {"source": data["source"], "path": os.path.normpath(data["path"])}
    if data["source"] == "synthetic":
        syn = data.get("synthetic") or {}
        ident.update(n_records=syn.get("n_records"), seed=syn.get("seed"))
    return ident


def check_data_config(data: dict, manifest: str = DATA_MANIFEST) -> None:
    """Refuse (ValueError) a data config other than the one `manifest` records: Snakemake would
    otherwise delete the acquire output and rebuild every stage from the other data."""
    if not os.path.isfile(manifest):
        return
    try:
        with open(manifest) as f:
            built = json.load(f)
        recorded = built.get("data") or {"source": built["source"], "path": os.path.normpath(built["root"])}
    except (OSError, ValueError, KeyError, AttributeError):
        return  # not ours to judge: the acquire rule rewrites an unreadable manifest
    wanted = data_identity(data)
    same_folder = os.path.abspath(str(recorded.get("path"))) == os.path.abspath(wanted["path"])
    if recorded == wanted or (same_folder and {**recorded, "path": wanted["path"]} == wanted):
        return
    show = lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"  # noqa: E731
    raise ValueError(
        f"results/ was built from data {show(recorded)} ({manifest}), but this command asks for "
        f"data {show(wanted)}. Nothing was run or deleted. Give the same data config as the build "
        "(keep it in a file and pass it every time: --configfile my-data.yaml), or, to rebuild "
        f"every stage from the new data on purpose, delete {manifest} (or use another --directory)."
    )
