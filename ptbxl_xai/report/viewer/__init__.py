"""Interactive explanation viewer: one self-contained HTML page a clinician opens in a browser.

`render_viewer(records, out_path)` validates the records, decides each label (probability >=
threshold, on the full-precision values: the page shows that decision), rounds every float to 4
significant digits, embeds them as JSON in `<script type="application/json" id="data">` and inlines
`template.html`, `viewer.css` and `viewer.js` (package data next to this file), so the page
needs no server, no network and no other file: it works from file://. `validate_record` gives
the same JSON-ready record to other pages that reuse viewer.js (the live app).

Record contract (one dict per ECG):

    {"ecg_id": int, "sampling_rate": int (Hz, e.g. 100),
     "leads": [12 lead names], "signal": [[T floats] x 12], "units": "mV" | "z-score" | ...,
     "label_names": [C names], "label_descriptions": {name: text},
     "probabilities": [C floats in [0, 1]], "true": [C of 0/1] or None (no reference), "thresholds": [C floats in [0, 1]],
     "features": FeatureSpace or {"kind": "waves" | "bins", "segment_names": [S names],
                 "runs": [[start, stop, segment index], ...] (contiguous, covering samples 0..T), "notes": [text]},
       or, instead of "features", "n_bins": int (S equal time bins per lead),
     "attributions": {method: {label_name: [[S floats] x 12]}},
     optional:
     "lead_scale": [12 floats > 0], "lead_offset": [12 floats]: mV = signal * lead_scale + lead_offset
                 (the filtered signal in mV, while `signal` is what the model saw, e.g. z-scores),
     "beats": [[p_on, p_off, qrs_on, r, qrs_off, t_on, t_off] per beat] (sample indices, -1 = not found;
              or a beat table with those columns), global across leads, from delineation,
     "method_flags": {method: "<status>" or "<status>: why"} with status passed | caution | failed |
                     not checked (sanity checks; see `method_flags_from_table`),
     "known_answer_flags": {method: status} as method_flags, from the planted-cause benchmark
                     (`ptbxl_xai.explain.checks.known_answer.known_answer_flags`),
     "counterfactuals": {label: answer of `TrainedRun.counterfactual_answer`} (drawn on the median beat),
     "notes": [text] (e.g. resampling, context of the numbers)}

with method in {"shap", "lime", "attention"} (any subset; labels any subset of label_names).
Feature s of lead l is the union of the samples of the runs with segment index s; with "waves"
the segments are P, PR, QRS, ST, T and TP over every beat, with "bins" bin b covers
[b, b + 1) * T / n_bins samples. From "beats" the page also gets the record's wave segments (for
the colour bands) and the R-aligned median beat of every lead (in mV where calibrated).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from numbers import Integral
from pathlib import Path

import numpy as np

from ptbxl_xai.explain.spaces.features import (
    FEATURE_KINDS,
    FIDUCIALS,
    SEGMENTS,
    FeatureSpace,
    NotDelineated,
    segment_labels,
)
from ptbxl_xai.explain.spaces.median_beat import median_beat

__all__ = [
    "METHODS",
    "N_LEADS",
    "feature_block",
    "method_flags_from_table",
    "render_viewer",
    "runs_of",
    "validate_record",
    "viewer_html",
]

METHODS = ("shap", "lime", "attention")
N_LEADS = 12
SIGNIFICANT_DIGITS = 4
REQUIRED_FIELDS = (
    "ecg_id",
    "sampling_rate",
    "leads",
    "signal",
    "units",
    "label_names",
    "label_descriptions",
    "probabilities",
    "true",
    "thresholds",
    "attributions",
)
OPTIONAL_FIELDS = (
    "features",
    "n_bins",
    "lead_scale",
    "lead_offset",
    "beats",
    "method_flags",
    "known_answer_flags",
    "notes",
    "counterfactuals",
)
FLAG_STATUSES = ("passed", "caution", "failed", "not checked")
FLAG_PATTERN = re.compile(r"^(passed|caution|failed|not checked)(: \S.*)?$", re.S)
# ptbxl_xai.explain.checks.randomisation.method_flags' vocabulary -> the viewer's
_SANITY_FLAGS = {"pass": "passed", "caution": "caution", "fail": "failed", "untested": "not checked"}
METHOD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Problem(Exception):
    """A contract violation inside one field; turned into a ValueError naming record and field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _round_sig(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Round to `digits` significant digits, dividing/multiplying by exact powers of ten so the
    float's shortest repr (what json writes) is the short decimal, e.g. 0.1235, not 0.12350000001."""
    a = np.asarray(values, dtype=float)
    out = np.zeros_like(a)
    nonzero = a != 0
    exp = np.zeros(a.shape, dtype=int)
    exp[nonzero] = digits - 1 - np.floor(np.log10(np.abs(a[nonzero]))).astype(int)
    up = nonzero & (exp >= 0)
    down = nonzero & (exp < 0)
    tiny = up & (exp > 300)  # 10**exp overflows near float64's smallest values: round via the decimal string
    up &= ~tiny
    out[up] = np.round(a[up] * 10.0 ** exp[up]) / 10.0 ** exp[up]
    with np.errstate(over="ignore"):
        out[down] = np.round(a[down] / 10.0 ** -exp[down]) * 10.0 ** -exp[down]
    out[tiny] = [float(f"{v:.{digits}g}") for v in a[tiny]]
    overflow = ~np.isfinite(out) & np.isfinite(a)  # 1.7975e308 rounds past the largest float: keep it
    out[overflow] = a[overflow]
    return out


def _numbers(value, field: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A finite float array of the given shape (None = any length) or a _Problem."""
    if isinstance(value, (str, bytes, Mapping)):
        raise _Problem(field, f"expected numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise _Problem(field, f"not a regular array of numbers ({exc})") from None
    if arr.dtype == object:
        raise _Problem(field, "not a regular array of numbers (ragged or mixed types)")
    if arr.dtype.kind not in "biuf":
        raise _Problem(field, f"expected numbers, got dtype {arr.dtype}")
    expected = "x".join("T" if n is None else str(n) for n in shape)
    if arr.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, arr.shape)):
        raise _Problem(field, f"expected shape {expected}, got {'x'.join(map(str, arr.shape)) or 'scalar'}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise _Problem(field, "contains NaN or infinite values")
    return arr


def _integer(value, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _Problem(field, f"expected an integer, got {value!r}")
    if value < minimum:
        raise _Problem(field, f"expected an integer >= {minimum}, got {value}")
    return int(value)


def _names(value, field: str, length: int | None = None) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _Problem(field, f"expected a list of names, got {type(value).__name__}")
    names = list(value)
    if length is not None and len(names) != length:
        raise _Problem(field, f"expected {length} names, got {len(names)}")
    if not names:
        raise _Problem(field, "expected at least one name")
    for name in names:
        if not isinstance(name, str) or not name:
            raise _Problem(field, f"names must be non-empty strings, got {name!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _Problem(field, f"duplicate names {duplicates}")
    return names


def _in_unit_interval(arr: np.ndarray, field: str) -> np.ndarray:
    if np.any((arr < 0) | (arr > 1)):
        raise _Problem(field, "values must lie in [0, 1]")
    return arr


def runs_of(labels: np.ndarray) -> list[list[int]]:
    """[T] integer labels -> [[start, stop, label], ...] runs of equal labels (stop exclusive)."""
    labels = np.asarray(labels)
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(labels)]])
    return [[int(a), int(b), int(labels[a])] for a, b in zip(starts, stops)]


def feature_block(space: FeatureSpace) -> dict:
    """The record's "features" entry for a FeatureSpace: kind, segment names, runs and notes."""
    return {
        "kind": space.kind,
        "segment_names": list(space.segment_names),
        "runs": runs_of(space.segment_of_sample),
        "notes": list(space.notes),
    }


def _bins_block(n_bins: int, T: int) -> dict:
    # Equal windows even where T is not a multiple of n_bins: bin b covers [b, b + 1) * T / n_bins.
    edges = np.floor(np.arange(n_bins + 1) * T / n_bins + 1e-9).astype(int)
    runs = [[int(edges[b]), int(edges[b + 1]), b] for b in range(n_bins)]
    return {"kind": "bins", "segment_names": [f"bin{b:02d}" for b in range(n_bins)], "runs": runs, "notes": []}


def _texts(value, field: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _Problem(field, f"expected a list of strings, got {type(value).__name__}")
    for text in value:
        if not isinstance(text, str):
            raise _Problem(field, f"expected strings, got {text!r}")
    return list(value)


def _features(record, T: int) -> dict:
    """The feature space as {kind, segment_names, runs, notes}, checked to partition [0, T)."""
    has_features, has_bins = record.get("features") is not None, record.get("n_bins") is not None
    if has_features == has_bins:
        raise _Problem("features", "give either 'features' (a feature space) or 'n_bins' (time bins), not both")
    if has_bins:
        n_bins = _integer(record["n_bins"], "n_bins")
        if n_bins > T:
            raise _Problem("n_bins", f"{n_bins} bins for only {T} samples")
        return _bins_block(n_bins, T)
    value = record["features"]
    if isinstance(value, FeatureSpace):
        value = feature_block(value)
    if not isinstance(value, Mapping):
        raise _Problem("features", f"expected a FeatureSpace or a dict, got {type(value).__name__}")
    missing = [k for k in ("kind", "segment_names", "runs") if k not in value]
    if missing:
        raise _Problem("features", f"missing {missing}")
    kind = value["kind"]
    if kind not in FEATURE_KINDS:
        raise _Problem("features.kind", f"expected one of {list(FEATURE_KINDS)}, got {kind!r}")
    names = _names(value["segment_names"], "features.segment_names")
    if kind == "waves" and tuple(names) != SEGMENTS:
        raise _Problem("features.segment_names", f"waves segments must be {list(SEGMENTS)}, got {names}")
    runs = _numbers(value["runs"], "features.runs", (None, 3))
    if len(runs) == 0 or np.any(runs != np.round(runs)):
        raise _Problem("features.runs", "expected a non-empty list of [start, stop, segment] integers")
    runs = runs.astype(int)
    start, stop, seg = runs.T
    if start[0] != 0 or stop[-1] != T or np.any(stop <= start) or np.any(start[1:] != stop[:-1]):
        raise _Problem("features.runs", f"runs must be contiguous, non-empty and cover samples 0 to {T}")
    if np.any((seg < 0) | (seg >= len(names))):
        raise _Problem("features.runs", f"segment indices must lie in [0, {len(names)})")
    notes = _texts(value.get("notes", []), "features.notes")
    return {"kind": kind, "segment_names": names, "runs": runs.tolist(), "notes": notes}


def _beats(value, T: int) -> np.ndarray:
    if hasattr(value, "columns"):
        missing = [c for c in FIDUCIALS if c not in value.columns]
        if missing:
            raise _Problem("beats", f"beat table lacks columns {missing}")
        value = value[list(FIDUCIALS)].to_numpy()
    if not isinstance(value, (str, bytes, Mapping)) and hasattr(value, "__len__") and len(value) == 0:
        return np.zeros((0, len(FIDUCIALS)), dtype=int)  # delineation ran and found no beat
    beats = _numbers(value, "beats", (None, len(FIDUCIALS)))
    if np.any(beats != np.round(beats)):
        raise _Problem("beats", "sample indices must be integers")
    beats = beats.astype(int)
    if np.any((beats < -1) | (beats >= T)):
        raise _Problem("beats", f"sample indices must lie in [0, {T}) or be -1 (not found)")
    return beats


def _flags(value, field: str = "method_flags") -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Problem(field, f"expected a dict method -> status, got {type(value).__name__}")
    out = {}
    for method, status in value.items():
        if not isinstance(method, str) or not METHOD_NAME.match(method):
            raise _Problem(field, f"method names are lower-case identifiers, got {method!r}")
        if not isinstance(status, str) or not FLAG_PATTERN.match(status):
            raise _Problem(
                f"{field}.{method}",
                f"expected one of {list(FLAG_STATUSES)}, optionally followed by ': <why>', got {status!r}",
            )
        out[method] = status
    return out


def method_flags_from_table(table) -> dict[str, str]:
    """{method: status} from a sanity-check table (columns method, flag, note; flag pass | caution |
    fail | untested, as `ptbxl_xai.explain.checks.randomisation.method_flags` writes it) for a record's method_flags."""
    flags = {}
    for row in table.itertuples(index=False):
        status = _SANITY_FLAGS.get(str(row.flag))
        if status is None:
            raise ValueError(f"method {row.method!r}: unknown sanity flag {row.flag!r}; expected {list(_SANITY_FLAGS)}")
        note = str(getattr(row, "note", "") or "").strip()
        flags[str(row.method)] = f"{status}: {note}" if note and note != "nan" else status
    return flags


def _median_beat_block(signal_mv: np.ndarray, beats: np.ndarray, rate: int) -> tuple[dict | None, str]:
    try:
        mb = median_beat(signal_mv, beats, rate)
    except NotDelineated as exc:
        return None, f"no median beat: {exc}"
    block = {
        "start_s": mb.start_s,
        "r_index": mb.r_index,
        "n_beats": mb.n_beats,
        "signal": _round_sig(mb.signal).tolist(),
        "fiducials": mb.fiducials,
        "runs": None if mb.segment_of_sample is None else runs_of(mb.segment_of_sample),
        "notes": list(mb.notes),
    }
    return block, f"median of {mb.n_beats} beat(s), aligned on R"


def _text(value, field: str) -> str:
    if not isinstance(value, str):
        raise _Problem(field, f"expected a string, got {type(value).__name__}")
    return value


def _flag(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise _Problem(field, f"expected true or false, got {value!r}")
    return value


def _counterfactuals(value, names: list[str], median: dict | None) -> dict:
    """label -> counterfactual answer (`TrainedRun.counterfactual_answer`): the sentences the page shows and
    the median beats it draws, checked against the record's labels and median beat."""
    if not isinstance(value, Mapping):
        raise _Problem("counterfactuals", f"expected a dict label -> answer, got {type(value).__name__}")
    out = {}
    for label, answer in value.items():
        field = f"counterfactuals.{label}"
        if label not in names:
            raise _Problem(field, f"label {label!r} is not in label_names")
        if not isinstance(answer, Mapping) or "available" not in answer:
            raise _Problem(field, "expected a dict with `available`")
        if not _flag(answer["available"], f"{field}.available"):
            out[label] = {"available": False, "reason": _text(answer.get("reason"), f"{field}.reason")}
            continue
        seg = answer.get("segments")
        if not isinstance(seg, Mapping):
            raise _Problem(f"{field}.segments", "expected a dict")
        clean_seg = {
            "valid": _flag(seg.get("valid"), f"{field}.segments.valid"),
            "sentence": _text(seg.get("sentence"), f"{field}.segments.sentence"),
            "changed": _names(seg.get("changed", []), f"{field}.segments.changed") if seg.get("changed") else [],
        }
        for name in clean_seg["changed"]:
            lead, _, segment = name.partition(":")
            if segment not in SEGMENTS:
                raise _Problem(
                    f"{field}.segments.changed", f"{name!r} is not lead:segment with a segment of {SEGMENTS}"
                )
        edits = answer.get("edits", [])
        if isinstance(edits, (str, bytes, Mapping)) or not isinstance(edits, Sequence):
            raise _Problem(f"{field}.edits", "expected a list")
        clean_edits = []
        for i, e in enumerate(edits):
            if not isinstance(e, Mapping):
                raise _Problem(f"{field}.edits[{i}]", "expected a dict")
            clean_edits.append({"kind": _text(e.get("kind"), f"{field}.edits[{i}].kind"),
                                "valid": _flag(e.get("valid"), f"{field}.edits[{i}].valid"),
                                "sentence": _text(e.get("sentence"), f"{field}.edits[{i}].sentence")})  # fmt: skip
        clean = {"available": True, "predicted": _flag(answer.get("predicted"), f"{field}.predicted"),
                 "segments": clean_seg, "edits": clean_edits}  # fmt: skip
        overlay = answer.get("overlay")
        if overlay is not None:
            if median is None:
                raise _Problem(f"{field}.overlay", "the record has no median beat to draw it on")
            width = len(median["signal"][0])
            cf = _numbers(overlay.get("counterfactual"), f"{field}.overlay.counterfactual", (N_LEADS, width))
            clean["overlay"] = {"counterfactual": _round_sig(cf).tolist()}
        out[label] = clean
    return out


def _check_fields(record) -> dict:
    if not isinstance(record, Mapping):
        raise _Problem("<record>", f"expected a dict, got {type(record).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise _Problem(missing[0], "missing" + (f" (also missing: {missing[1:]})" if missing[1:] else ""))
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise _Problem(unknown[0], f"unknown field; expected only {list(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")

    out: dict = {
        "ecg_id": _integer(record["ecg_id"], "ecg_id", minimum=0),
        "sampling_rate": _integer(record["sampling_rate"], "sampling_rate"),
    }
    out["leads"] = _names(record["leads"], "leads", N_LEADS)
    signal = _numbers(record["signal"], "signal", (N_LEADS, None))
    T = signal.shape[1]
    if T < 1:
        raise _Problem("signal", "has no samples")
    units = record["units"]
    if not isinstance(units, str) or not units.strip():
        raise _Problem("units", f"expected a non-empty string, got {units!r}")
    out["units"] = units.strip()

    # Calibration to mV: both or neither; the page draws mV = signal * lead_scale + lead_offset.
    scale, offset = record.get("lead_scale"), record.get("lead_offset")
    if (scale is None) != (offset is None):
        raise _Problem("lead_scale" if scale is None else "lead_offset", "give lead_scale and lead_offset together")
    if scale is not None:
        scale = _numbers(scale, "lead_scale", (N_LEADS,))
        if np.any(scale <= 0):
            raise _Problem("lead_scale", "values must be > 0 (mV per signal unit)")
        offset = _numbers(offset, "lead_offset", (N_LEADS,))
        scale, offset = _round_sig(scale), _round_sig(offset)
        signal_mv = signal * scale[:, None] + offset[:, None]
        out["lead_scale"], out["lead_offset"] = scale.tolist(), offset.tolist()
    else:
        signal_mv = signal
        out["lead_scale"] = out["lead_offset"] = None
    calibrated = scale is not None or out["units"].lower() == "mv"
    out["display_units"] = "mV" if calibrated else out["units"]

    names = _names(record["label_names"], "label_names")
    n_labels = len(names)
    out["label_names"] = names
    descriptions = record["label_descriptions"]
    if not isinstance(descriptions, Mapping):
        raise _Problem("label_descriptions", f"expected a dict name -> text, got {type(descriptions).__name__}")
    for key, text in descriptions.items():
        if not isinstance(text, str):
            raise _Problem("label_descriptions", f"description of {key!r} is not a string: {text!r}")
    # Only the labels shown need a tooltip; a missing description is shown as the bare name.
    out["label_descriptions"] = {n: descriptions.get(n, "") for n in names}

    out["probabilities"] = _in_unit_interval(
        _numbers(record["probabilities"], "probabilities", (n_labels,)), "probabilities"
    )
    if record["true"] is None:  # a user's own ECG: no reference labels, so no TP/FP/FN marks
        out["true"] = None
    else:
        truth = _numbers(record["true"], "true", (n_labels,))
        if not np.all((truth == 0) | (truth == 1)):
            raise _Problem("true", "values must be 0 or 1")
        out["true"] = [int(v) for v in truth]
    out["thresholds"] = _in_unit_interval(_numbers(record["thresholds"], "thresholds", (n_labels,)), "thresholds")

    features = _features(record, T)
    out["features"] = features
    out["n_bins"] = len(features["segment_names"]) if features["kind"] == "bins" else None
    n_seg = len(features["segment_names"])

    attributions = record["attributions"]
    if not isinstance(attributions, Mapping):
        raise _Problem("attributions", f"expected a dict method -> label -> array, got {type(attributions).__name__}")
    clean: dict[str, dict[str, list]] = {}
    for method, by_label in attributions.items():
        if method not in METHODS:
            raise _Problem("attributions", f"unknown method {method!r}; expected one of {list(METHODS)}")
        if not isinstance(by_label, Mapping):
            raise _Problem(f"attributions.{method}", f"expected a dict label -> [[{n_seg} floats] x 12]")
        clean[method] = {}
        for label, values in by_label.items():
            field = f"attributions.{method}.{label}"
            if label not in names:
                raise _Problem(field, f"label {label!r} is not in label_names")
            clean[method][label] = _round_sig(_numbers(values, field, (N_LEADS, n_seg))).tolist()
    out["attributions"] = clean

    # Beats give the wave segments (colour bands, fiducial marks) and the median beat, whatever
    # space the attributions live in: a record explained on bins may still be delineated.
    out["beats"] = out["segments"] = out["median_beat"] = None
    out["median_beat_note"] = "no beats: the record was not delineated"
    if record.get("beats") is not None:
        beats = _beats(record["beats"], T)
        out["beats"] = beats.tolist()
        if len(beats):
            try:
                seg, seg_notes = segment_labels(beats, T)
                out["segments"] = {"names": list(SEGMENTS), "runs": runs_of(seg), "notes": seg_notes}
            except NotDelineated as exc:
                out["median_beat_note"] = f"no wave segments: {exc}"
            out["median_beat"], note = _median_beat_block(signal_mv, beats, out["sampling_rate"])
            if out["segments"] is not None:
                out["median_beat_note"] = note
        else:
            out["median_beat_note"] = "no beats found by delineation"

    out["method_flags"] = _flags(record["method_flags"]) if record.get("method_flags") is not None else {}
    known = record.get("known_answer_flags")
    out["known_answer_flags"] = {} if known is None else _flags(known, "known_answer_flags")
    out["notes"] = _texts(record["notes"], "notes") if record.get("notes") is not None else []
    cf = record.get("counterfactuals")
    out["counterfactuals"] = {} if cf is None else _counterfactuals(cf, names, out["median_beat"])

    # The decision is the model's, made on full-precision values: rounded independently, a probability
    # within 1e-4 of its threshold could flip (0.30004 < 0.30005, both "0.3000").
    out["predicted"] = [int(p >= t) for p, t in zip(out["probabilities"], out["thresholds"])]
    out["signal"] = _round_sig(signal).tolist()
    out["probabilities"] = _round_sig(out["probabilities"]).tolist()
    out["thresholds"] = _round_sig(out["thresholds"]).tolist()
    return out


def validate_record(record, index: int = 0) -> dict:
    """Check one record against the contract; return a JSON-ready copy with rounded floats.

    Raises ValueError("record <index> (ecg_id <id>): field '<field>': <problem>").
    """
    try:
        return _check_fields(record)
    except _Problem as problem:
        ecg_id = record.get("ecg_id", "?") if isinstance(record, Mapping) else "?"
        raise ValueError(f"record {index} (ecg_id {ecg_id}): field '{problem.field}': {problem.message}") from None


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def _json_for_script(payload) -> str:
    """JSON that cannot end the <script> element early: '<', '>' and '&' become \\u escapes
    (valid inside JSON strings, the only place they can occur), so no '</script' or '<!--'
    survives; U+2028/9 are escaped for old JS parsers."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _asset(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


ASSETS = ("viewer.css", "viewer.js")  # what a page with linked assets loads from its asset URL


def viewer_asset(name: str) -> str:
    """viewer.css or viewer.js, as a server of linked pages serves them."""
    if name not in ASSETS:
        raise KeyError(name)
    return _asset(name)


def _page(title: str, data_json: str, context: str = "", asset_url: str | None = None) -> str:
    template = _asset("template.html")
    if asset_url is None:  # self-contained: the stylesheet and script inlined
        css, js = _asset("viewer.css"), _asset("viewer.js")
        if re.search(r"</style", css, re.I) or re.search(r"</script", js, re.I):
            raise RuntimeError("viewer.css/viewer.js must not contain '</style' or '</script'")
    else:  # served: loaded as files, so the page's content policy needs no 'unsafe-inline'
        base = html.escape(asset_url.rstrip("/"), quote=True)
        css = js = ""
        template = template.replace("<style>{{css}}</style>", f'<link rel="stylesheet" href="{base}/viewer.css">')
        template = template.replace("<script>{{js}}</script>", f'<script src="{base}/viewer.js"></script>')
        if "{{css}}" in template or "{{js}}" in template:
            raise RuntimeError("the viewer template's <style>{{css}}</style> / <script>{{js}}</script> changed")
    parts = {"title": html.escape(title), "context": html.escape(context), "css": css, "js": js, "data": data_json}
    # One pass: inserted text is never scanned again, so data containing "{{js}}" is inert.
    return re.sub(r"\{\{(title|context|css|js|data)\}\}", lambda m: parts[m.group(1)], template)


def viewer_html(
    records: list[dict], title: str = "ECG explanations", context: str = "", asset_url: str | None = None
) -> str:
    """The self-contained page for `records` (validated, JSON-ready) as a string.

    `asset_url`: link viewer.css and viewer.js from there (`viewer_asset` serves them) instead of
    inlining them, for a server whose content policy allows no inline script or style.

    `context` is the line under the title that says what the numbers on the page come from: data
    source, records used, label set, split (`ptbxl_xai.evaluation.context.context_sentence`).

    With no records the page waits for its records from script: `ECGViewer.setRecords([...])` or
    `ECGViewer.upsertRecord(record)` with records as `validate_record` returns them (the live app).
    """
    if isinstance(records, Mapping) or not isinstance(records, Sequence):
        raise ValueError("records: expected a list of record dicts")
    if not isinstance(title, str):
        raise ValueError(f"title: expected a string, got {title!r}")
    clean = [validate_record(record, i) for i, record in enumerate(records)]
    seen: dict[int, int] = {}
    for i, record in enumerate(clean):
        if record["ecg_id"] in seen:
            raise ValueError(
                f"record {i} (ecg_id {record['ecg_id']}): field 'ecg_id': duplicate of record {seen[record['ecg_id']]}"
            )
        seen[record["ecg_id"]] = i
    if not isinstance(context, str):
        raise ValueError(f"context: expected a string, got {context!r}")
    return _page(title, _json_for_script({"title": title, "records": clean}), context, asset_url)


def render_viewer(records: list[dict], out_path, title: str = "ECG explanations", context: str = "") -> Path:
    """Write the viewer for `records` and return the path of the HTML file.

    `out_path` is a folder (the page is written as `<out_path>/index.html`) or a path ending in
    `.html`. Raises ValueError naming the record and the field when a record breaks the contract.
    """
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or not records:
        raise ValueError("records: expected a non-empty list of record dicts")
    page = viewer_html(records, title, context)
    out = Path(out_path)
    target = out if out.suffix.lower() in (".html", ".htm") else out / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)  # atomic: a half-written page is never left behind
    return target
