"""Reading PTB-XL WFDB records fast, with `wfdb` as the fallback for anything unusual.

`wfdb.rdheader` costs ~4 ms per record (as much as `wfdb.rdsamp` itself), so the plain
single-file format-16 headers that PTB-XL uses are parsed here (~0.05 ms) and the data read with
`numpy.fromfile`; any header this parser does not fully understand (other formats, skew, byte
offsets, multi-segment records) goes to `wfdb.rdheader`/`wfdb.rdrecord`. Every way a record can
be unusable raises `RecordError` with a short reason, which preprocessing writes to quality.tsv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from ecgxai.data.ptbxl import LEADS


class RecordError(Exception):
    """A record that cannot be used; `str(exc)` is the reason written to quality.tsv and
    `kind` a short category for summaries (e.g. "missing file", "flat lead")."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


_GAIN = re.compile(r"^([-+\d.eE]+)(?:\(([-+\d]+)\))?(?:/(\S+))?$")


@dataclass
class Header:
    """The header fields preprocessing needs, from our parser or from wfdb's."""

    n_sig: int
    fs: float | None
    sig_len: int
    sig_name: list
    file_name: list
    fmt: list
    adc_gain: list
    baseline: list
    simple: bool  # single file, format 16, no skew/offset/frames: readable with numpy


def _parse_simple_header(text: str) -> Header | None:
    """Parse a plain format-16 WFDB header; None where wfdb must take over."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return None
    rec = lines[0].split()
    if len(rec) < 4 or "/" in rec[0] or "/" in rec[2] or "(" in rec[2]:
        return None
    try:
        n_sig, fs, sig_len = int(rec[1]), float(rec[2]), int(rec[3])
    except ValueError:
        return None
    sigs = lines[1 : 1 + n_sig]
    if len(sigs) != n_sig:
        return None
    names, files, gains, baselines = [], [], [], []
    for line in sigs:
        f = line.split(maxsplit=8)
        if len(f) < 9 or f[1] != "16":  # anything but plain format 16 (x, :, +) goes to wfdb
            return None
        m = _GAIN.match(f[2])
        if not m:
            return None
        gain = float(m.group(1)) or 200.0  # WFDB: gain 0 means the default, 200
        baseline = int(m.group(2)) if m.group(2) is not None else int(f[4])  # else ADC zero
        files.append(f[0]), names.append(f[8]), gains.append(gain), baselines.append(baseline)
    return Header(n_sig, fs, sig_len, names, files, ["16"] * n_sig, gains, baselines, simple=True)


def read_header(base: Path) -> Header:
    """Header of the record at `base`; RecordError if missing or unreadable."""
    hea = base.with_suffix(".hea")
    try:
        text = hea.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise RecordError("missing file", f"missing header file {hea.name}") from None
    header = _parse_simple_header(text)
    if header is not None:
        return header
    try:
        h = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise RecordError(
            "unreadable header", f"unreadable header {hea.name}: {type(exc).__name__}: {exc}".strip()
        ) from None
    simple = not any(h.byte_offset or []) and max(h.samps_per_frame or [1]) == 1 and set(h.fmt or []) == {"16"}
    return Header(
        h.n_sig,
        h.fs,
        int(h.sig_len or 0),
        list(h.sig_name or []),
        list(h.file_name or []),
        list(h.fmt or []),
        list(h.adc_gain or []),
        list(h.baseline or []),
        simple,
    )


def read_wfdb_record(base: Path, *, rate: int, min_samples: int) -> np.ndarray:
    """Physical signal (mV) of the WFDB record at `base` (path without extension) as float32
    [12, samples], leads in PTB-XL order. Raises RecordError for unusable records."""
    hea = base.with_suffix(".hea")
    header = read_header(base)
    names = [str(n).upper() for n in (header.sig_name or [])]
    if header.n_sig != len(LEADS) or sorted(names) != sorted(LEADS):
        raise RecordError("wrong leads", f"wrong leads: {header.n_sig} signals {names}, expected the 12 standard leads")
    if header.fs is None or round(float(header.fs)) != rate:
        raise RecordError("wrong sampling rate", f"sampling rate {header.fs:g} Hz, expected {rate} Hz")
    n = int(header.sig_len or 0)
    if n < min_samples:
        raise RecordError("too short", f"too short: {n} samples, at least {min_samples} needed")
    files = set(header.file_name)
    if len(files) != 1:
        raise RecordError("unsupported layout", f"signals spread over {len(files)} files; one .dat per record expected")
    dat = base.parent / header.file_name[0]
    if not dat.is_file():
        raise RecordError("missing file", f"missing data file {dat.name}")

    if header.simple:
        expected = n * header.n_sig * 2
        if dat.stat().st_size < expected:
            raise RecordError(
                "truncated data", f"truncated data file {dat.name}: {dat.stat().st_size} bytes, expected {expected}"
            )
        digital = np.fromfile(dat, dtype="<i2", count=n * header.n_sig).reshape(n, header.n_sig)
        gain = np.asarray(header.adc_gain, dtype=np.float64)
        baseline = np.asarray(header.baseline, dtype=np.float64)
        if np.any(gain == 0):
            raise RecordError("unreadable header", f"zero ADC gain in {hea.name}")
        signal = ((digital - baseline) / gain).T
        # WFDB marks missing samples with the format's minimum (-32768).
        signal[digital.T == -32768] = np.nan
    else:
        try:
            signal = wfdb.rdrecord(str(base), physical=True).p_signal.T
        except Exception as exc:
            raise RecordError("unreadable data", f"unreadable data {dat.name}: {type(exc).__name__}: {exc}") from exc
    order = [names.index(lead) for lead in LEADS]
    signal = np.ascontiguousarray(signal[order], dtype=np.float32)
    bad = ~np.isfinite(signal).all(axis=1)
    if bad.any():
        raise RecordError("NaN samples", "NaN or infinite samples in lead(s) " + ",".join(np.asarray(LEADS)[bad]))
    return signal
