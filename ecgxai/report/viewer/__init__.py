"""Interactive explanation viewer: one self-contained HTML page a clinician opens in a browser.

`render_viewer(records, out_path)` validates the records, rounds every float to 4 significant
digits, embeds them as JSON in `<script type="application/json" id="data">` and inlines
`template.html`, `viewer.css` and `viewer.js` (package data next to this file), so the page
needs no server, no network and no other file: it works from file://.

Record contract (one dict per ECG):

    {"ecg_id": int, "sampling_rate": int (Hz, e.g. 100),
     "leads": [12 lead names], "signal": [[T floats] x 12], "units": "mV" | "z-score" | ...,
     "label_names": [C names], "label_descriptions": {name: text},
     "probabilities": [C floats in [0, 1]], "true": [C of 0/1] or None (no reference), "thresholds": [C floats in [0, 1]],
     "n_bins": int, "attributions": {method: {label_name: [[n_bins floats] x 12]}}}

with method in {"shap", "lime", "attention"} (any subset; labels any subset of label_names).
Bin b of n_bins covers [b, b + 1) * T / (sampling_rate * n_bins) seconds of the signal.
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

__all__ = ["METHODS", "N_LEADS", "render_viewer", "validate_record"]

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
    "n_bins",
    "attributions",
)


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
    out[up] = np.round(a[up] * 10.0 ** exp[up]) / 10.0 ** exp[up]
    out[down] = np.round(a[down] / 10.0 ** -exp[down]) * 10.0 ** -exp[down]
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


def _check_fields(record) -> dict:
    if not isinstance(record, Mapping):
        raise _Problem("<record>", f"expected a dict, got {type(record).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise _Problem(missing[0], "missing" + (f" (also missing: {missing[1:]})" if missing[1:] else ""))

    out: dict = {
        "ecg_id": _integer(record["ecg_id"], "ecg_id", minimum=0),
        "sampling_rate": _integer(record["sampling_rate"], "sampling_rate"),
    }
    out["leads"] = _names(record["leads"], "leads", N_LEADS)
    signal = _numbers(record["signal"], "signal", (N_LEADS, None))
    if signal.shape[1] < 1:
        raise _Problem("signal", "has no samples")
    units = record["units"]
    if not isinstance(units, str) or not units.strip():
        raise _Problem("units", f"expected a non-empty string, got {units!r}")
    out["units"] = units.strip()

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

    n_bins = _integer(record["n_bins"], "n_bins")
    if n_bins > signal.shape[1]:
        raise _Problem("n_bins", f"{n_bins} bins for only {signal.shape[1]} samples")
    out["n_bins"] = n_bins

    attributions = record["attributions"]
    if not isinstance(attributions, Mapping):
        raise _Problem("attributions", f"expected a dict method -> label -> array, got {type(attributions).__name__}")
    clean: dict[str, dict[str, list]] = {}
    for method, by_label in attributions.items():
        if method not in METHODS:
            raise _Problem("attributions", f"unknown method {method!r}; expected one of {list(METHODS)}")
        if not isinstance(by_label, Mapping):
            raise _Problem(f"attributions.{method}", "expected a dict label -> [[n_bins floats] x 12]")
        clean[method] = {}
        for label, values in by_label.items():
            field = f"attributions.{method}.{label}"
            if label not in names:
                raise _Problem(field, f"label {label!r} is not in label_names")
            clean[method][label] = _round_sig(_numbers(values, field, (N_LEADS, n_bins))).tolist()
    out["attributions"] = clean

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


def _page(title: str, data_json: str) -> str:
    css, js = _asset("viewer.css"), _asset("viewer.js")
    if re.search(r"</style", css, re.I) or re.search(r"</script", js, re.I):
        raise RuntimeError("viewer.css/viewer.js must not contain '</style' or '</script'")
    parts = {"title": html.escape(title), "css": css, "js": js, "data": data_json}
    # One pass: inserted text is never scanned again, so data containing "{{js}}" is inert.
    return re.sub(r"\{\{(title|css|js|data)\}\}", lambda m: parts[m.group(1)], _asset("template.html"))


def render_viewer(records: list[dict], out_path, title: str = "ECG explanations") -> Path:
    """Write the viewer for `records` and return the path of the HTML file.

    `out_path` is a folder (the page is written as `<out_path>/index.html`) or a path ending in
    `.html`. Raises ValueError naming the record and the field when a record breaks the contract.
    """
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or not records:
        raise ValueError("records: expected a non-empty list of record dicts")
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

    page = _page(title, _json_for_script({"title": title, "records": clean}))
    out = Path(out_path)
    target = out if out.suffix.lower() in (".html", ".htm") else out / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)  # atomic: a half-written page is never left behind
    return target
