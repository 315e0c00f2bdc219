"""Reading WFDB records strictly: every header token is checked, every value is what the header says.

Headers are parsed here against the WFDB header grammar (header(5) of the WFDB manual), and a
token that does not fit it makes the record unusable with a reason, never a guess: `wfdb`'s own
parser is lenient (a missing sampling rate silently becomes 250 Hz, a garbled token is half read).
Format-16 data in one file, as PTB-XL stores it, is read with `numpy.fromfile` (~30x faster than
`wfdb.rdrecord`); other formats (212, 8, 24, ... and multi-file records) are decoded by `wfdb`,
after its reading of the header has been checked against ours. The data are then checked
against the header (file size, checksums, first samples), so a token that names the wrong file,
format or length is caught rather than read as noise. Every way a record can be unusable raises
`RecordError` with a short reason, which preprocessing writes to quality.tsv.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptbxl_xai.data.ptbxl import LEADS


class RecordError(Exception):
    """A record that cannot be used; `str(exc)` is the reason written to quality.tsv and
    `kind` a short category for summaries (e.g. "missing file", "flat lead")."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


# Physical units -> factor to millivolts. WFDB's default unit (no /units) is the millivolt.
UNITS_TO_MV = {"mV": 1.0, "uV": 1e-3, "V": 1e3}
# The digital value WFDB writes for a missing sample, per storage format (wfdb's _digi_nan).
INVALID_SAMPLE = {
    "8": -128,
    "16": -32768,
    "24": -(2**23),
    "32": -(2**31),
    "61": -32768,
    "80": -128,
    "160": -32768,
    "212": -2048,
    "310": -512,
    "311": -512,
    "508": -128,
    "516": -32768,
    "524": -(2**23),
}

_INT = re.compile(r"-?\d+")
_RECORD_NAME = re.compile(r"[-\w.]+(?:/(\d+))?")  # WFDB allows no dot; users' files have them
_FS = re.compile(r"(\d+\.?\d*|\.\d+)(?:/(?:\d+\.?\d*|\.\d+)(?:\(-?(?:\d+\.?\d*|\.\d+)\))?)?")
_FILE = re.compile(r"[-\w.]+")
_FORMAT = re.compile(r"(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?")
_GAIN = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\((-?\d+)\))?(?:/(\S+))?")


@dataclass
class Signal:
    """One signal line of a header, with WFDB's defaults filled in."""

    file_name: str
    fmt: str
    samps_per_frame: int
    skew: int
    byte_offset: int
    adc_gain: float
    baseline: int
    units: str
    adc_zero: int
    init_value: int | None
    checksum: int | None
    name: str


@dataclass
class Header:
    """A parsed header: the record line and its signal lines."""

    record_name: str
    n_sig: int
    fs: float
    sig_len: int | None
    signals: list[Signal]

    @property
    def sig_name(self) -> list[str]:
        return [s.name for s in self.signals]

    @property
    def file_name(self) -> list[str]:
        return [s.file_name for s in self.signals]

    @property
    def fmt(self) -> list[str]:
        return [s.fmt for s in self.signals]

    @property
    def adc_gain(self) -> list[float]:
        return [s.adc_gain for s in self.signals]

    @property
    def baseline(self) -> list[int]:
        return [s.baseline for s in self.signals]

    @property
    def simple(self) -> bool:
        """One format-16 file, one sample per frame, no skew: readable with numpy."""
        return (
            len(set(self.file_name)) == 1
            and set(self.fmt) == {"16"}
            and all(s.samps_per_frame == 1 and s.skew == 0 for s in self.signals)
            and len({s.byte_offset for s in self.signals}) == 1
        )


def header_path(base: Path) -> Path:
    """`base` + .hea; a record name may itself contain dots (``ecg.2024-01-01``)."""
    base = Path(base)
    return base if base.name.endswith(".hea") else base.with_name(base.name + ".hea")


def _bad(hea: str, what: str) -> RecordError:
    return RecordError("unreadable header", f"unreadable header {hea}: {what}")


def _int(token: str | None, hea: str, what: str, default: int | None) -> int | None:
    if token is None:
        return default
    if not _INT.fullmatch(token):
        raise _bad(hea, f"{what} {token!r} is not an integer")
    return int(token)


def _parse_signal(line: str, hea: str, i: int) -> Signal:
    tokens = line.split(maxsplit=8)
    if len(tokens) < 2:
        raise _bad(hea, f"signal line {i} has no storage format: {line!r}")
    tokens += [None] * (9 - len(tokens))
    file_name, fmt_token, gain_token, res, zero, init, checksum, _block, name = tokens
    where = f"signal {i}"
    if not _FILE.fullmatch(file_name) or file_name.strip(".") == "":
        raise _bad(hea, f"{where}: data file name {file_name!r} is not a plain file name")
    m = _FORMAT.fullmatch(fmt_token)
    if not m or m.group(1) not in INVALID_SAMPLE:
        raise _bad(hea, f"{where}: storage format {fmt_token!r} is not a WFDB format")
    fmt, spf, skew, offset = m.group(1), int(m.group(2) or 1), int(m.group(3) or 0), int(m.group(4) or 0)
    if gain_token is None:
        raise RecordError("uncalibrated", f"{hea} {where}: no ADC gain, so no physical units (uncalibrated)")
    g = _GAIN.fullmatch(gain_token)
    if not g:
        raise _bad(hea, f"{where}: ADC gain {gain_token!r} is not gain(baseline)/units")
    gain = float(g.group(1))
    if not math.isfinite(gain) or gain <= 0:
        kind = "uncalibrated" if gain == 0 else "unreadable header"
        raise RecordError(kind, f"{hea} {where}: ADC gain {g.group(1)} (must be a positive number)")
    units = g.group(3) or "mV"
    if units not in UNITS_TO_MV:
        raise RecordError("wrong units", f"{hea} {where}: units {units!r}, expected one of {sorted(UNITS_TO_MV)}")
    _int(res, hea, f"{where}: ADC resolution", None)
    adc_zero = _int(zero, hea, f"{where}: ADC zero", 0)
    baseline = int(g.group(2)) if g.group(2) is not None else adc_zero  # WFDB: baseline defaults to ADC zero
    return Signal(
        file_name=file_name,
        fmt=fmt,
        samps_per_frame=spf,
        skew=skew,
        byte_offset=offset,
        adc_gain=gain,
        baseline=baseline,
        units=units,
        adc_zero=adc_zero,
        init_value=_int(init, hea, f"{where}: initial value", None),
        checksum=_int(checksum, hea, f"{where}: checksum", None),
        name=(name or "").strip(),
    )


def parse_header(text: str, hea: str = "header") -> Header:
    """Parse WFDB header text strictly; RecordError naming `hea` and the bad token otherwise."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise _bad(hea, "empty")
    rec = lines[0].split()
    if len(rec) < 2:
        raise _bad(hea, f"record line {lines[0]!r} has no signal count")
    m = _RECORD_NAME.fullmatch(rec[0])
    if not m:
        raise _bad(hea, f"record name {rec[0]!r}")
    if m.group(1) is not None:
        raise RecordError("unsupported layout", f"{hea}: multi-segment record; single-segment records only")
    n_sig = _int(rec[1], hea, "signal count", None)
    if n_sig is None or n_sig < 1:
        raise _bad(hea, f"signal count {rec[1]!r}")
    if len(rec) < 3:  # wfdb would silently assume 250 Hz here
        raise RecordError("no sampling rate", f"{hea}: no sampling rate in the header (WFDB would assume 250 Hz)")
    f = _FS.fullmatch(rec[2])
    fs = float(f.group(1)) if f else float("nan")
    if not (math.isfinite(fs) and fs > 0):
        raise RecordError("wrong sampling rate", f"{hea}: sampling rate {rec[2]!r} is not a positive number")
    sig_len = _int(rec[3], hea, "signal length", None) if len(rec) > 3 else None
    if sig_len is not None and sig_len < 0:
        raise _bad(hea, f"signal length {sig_len}")
    if len(lines) < 1 + n_sig:
        raise _bad(hea, f"{n_sig} signals announced, {len(lines) - 1} signal lines found")
    signals = [_parse_signal(line, hea, i) for i, line in enumerate(lines[1 : 1 + n_sig])]
    return Header(rec[0], n_sig, fs, sig_len, signals)


def read_header(base: Path) -> Header:
    """Header of the record at `base`; RecordError if missing or malformed."""
    hea = header_path(base)
    try:
        raw = hea.read_bytes()
    except FileNotFoundError:
        raise RecordError("missing file", f"missing header file {hea.name}") from None
    except OSError as exc:
        raise RecordError("unreadable header", f"unreadable header {hea.name}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _bad(hea.name, f"not ASCII (byte {exc.start})") from None
    return parse_header(text, hea.name)


def signal_length(base: Path, header: Header) -> int:
    """Samples per signal: the header's, or (format 16 in one file) what the data file holds."""
    if header.sig_len is not None:
        return header.sig_len
    if header.simple:
        dat = base.parent / header.file_name[0]
        return (dat.stat().st_size - header.signals[0].byte_offset) // (2 * header.n_sig)
    raise RecordError("unreadable header", f"{header_path(base).name}: no signal length in the header")


def _digital_numpy(base: Path, header: Header, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) x signals of a single-file format-16 record, after an exact size check."""
    dat = base.parent / header.file_name[0]
    offset, n_sig = header.signals[0].byte_offset, header.n_sig
    size = dat.stat().st_size
    n = signal_length(base, header)
    expected = offset + n * n_sig * 2
    if size < expected:
        raise RecordError("truncated data", f"truncated data file {dat.name}: {size} bytes, expected {expected}")
    if size != expected:
        raise RecordError(
            "size mismatch",
            f"data file {dat.name} has {size} bytes; the header describes {expected} "
            f"({n} samples x {n_sig} signals in format 16)",
        )
    count = (stop - start) * n_sig
    return np.fromfile(dat, dtype="<i2", count=count, offset=offset + start * n_sig * 2).reshape(-1, n_sig)


def _digital_wfdb(base: Path, header: Header, start: int, stop: int | None) -> np.ndarray:
    """Samples [start, stop) x signals decoded by wfdb (other formats, several files), its reading
    of the header checked against ours."""
    import wfdb

    hea = header_path(base)
    try:
        rec = wfdb.rdrecord(
            str(hea.with_name(hea.name[: -len(".hea")])), sampfrom=start, sampto=stop, physical=False, return_res=64
        )
    except Exception as exc:  # wfdb raises many types for malformed data
        raise RecordError("unreadable data", f"unreadable data of {hea.name}: {type(exc).__name__}: {exc}") from None
    ours = (header.fs, header.n_sig, header.fmt, header.adc_gain, header.baseline)
    theirs = (rec.fs, rec.n_sig, list(rec.fmt or []), list(rec.adc_gain or []), list(rec.baseline or []))
    if ours != theirs:
        raise RecordError("unreadable header", f"unreadable header {hea.name}: ambiguous (wfdb reads it differently)")
    d = rec.d_signal
    expected = (stop if stop is not None else (header.sig_len if header.sig_len is not None else len(d))) - start
    if d is None or d.shape != (expected, header.n_sig):
        raise RecordError("unreadable data", f"unreadable data of {hea.name}: fewer samples than the header says")
    return d


# Bits per sample of the fixed-width formats (WFDB signal(5)); the FLAC formats 508/516/524 are compressed.
BITS_PER_SAMPLE = {
    "8": 8,
    "80": 8,
    "16": 16,
    "61": 16,
    "160": 16,
    "24": 24,
    "32": 32,
    "212": 12,
    "310": 32 / 3,
    "311": 32 / 3,
}
PACKED_SLACK_BYTES = 4  # 212/310/311 pack samples across bytes; writers pad the last group differently


def _check_file_sizes(base: Path, header: Header) -> None:
    """Each data file of a record wfdb decodes holds what the header describes, no more, no less
    (the numpy path checks its one format-16 file exactly): a file of another record is refused
    before it is decoded."""
    if header.sig_len is None:
        return
    for name in dict.fromkeys(header.file_name):
        signals = [s for s in header.signals if s.file_name == name]
        if any(s.fmt not in BITS_PER_SAMPLE for s in signals) or len({s.fmt for s in signals}) != 1:
            continue  # compressed, or mixed formats in one file: the checksums decide
        bits = BITS_PER_SAMPLE[signals[0].fmt] * sum(s.samps_per_frame for s in signals)
        expected = signals[0].byte_offset + math.ceil(header.sig_len * bits / 8)
        size = (base.parent / name).stat().st_size
        slack = PACKED_SLACK_BYTES if signals[0].fmt in ("212", "310", "311") else 0
        if size < expected:
            raise RecordError("truncated data", f"truncated data file {name}: {size} bytes, expected {expected}")
        if size > expected + slack:
            raise RecordError(
                "size mismatch",
                f"data file {name} has {size} bytes; the header describes {expected} "
                f"({header.sig_len} samples x {len(signals)} signals in format {signals[0].fmt})",
            )


def read_digital(base: Path, header: Header, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Digital samples [start, stop) x signals of the record at `base`; only that window is read,
    after the data files' sizes are checked against the header."""
    for name in sorted(set(header.file_name)):
        if not (base.parent / name).is_file():
            raise RecordError("missing file", f"missing data file {name}")
    try:
        if header.simple:
            return _digital_numpy(base, header, start, signal_length(base, header) if stop is None else stop)
        _check_file_sizes(base, header)
        return _digital_wfdb(base, header, start, stop)
    except OSError as exc:
        raise RecordError(
            "unreadable data", f"unreadable data of {header_path(base).name}: {exc.strerror or exc}"
        ) from None


# Frames read at a time while a record's data are checked against its header: 12 signals x 2^18
# frames of int64 sums is ~25 MB, so a 24-hour Holter record is checked in bounded memory.
VERIFY_CHUNK_FRAMES = 2**18


def verify_data(
    base: Path, header: Header, digital: np.ndarray | None = None, chunk: int = VERIFY_CHUNK_FRAMES
) -> None:
    """Check the data file(s) of the record at `base` against what its header says about them: the
    checksum (16-bit sum of all samples) and the first sample of every signal, after `read_digital`'s
    size check. Another record's `.dat` of the same size, a file in the wrong format or a corrupted
    sample is refused (RecordError "checksum mismatch", naming the files and the field) instead of
    being read as an ECG.

    Both fields come before the signal's name on its header line, and WFDB allows a field only where
    all before it are present: a header that names its 12 leads, as every reader here requires,
    states them, so every record that is read gets checked. `digital`: the whole record, already read
    (no second read); otherwise the data are read `chunk` frames at a time."""
    stated = [j for j, s in enumerate(header.signals) if s.checksum is not None or s.init_value is not None]
    if not stated:
        return
    n = signal_length(base, header)
    if digital is not None and digital.shape[0] != n:
        digital = None  # a window of the record: read it all, in chunks
    sums = np.zeros(header.n_sig, dtype=np.int64)
    first = None
    if digital is not None:
        sums += digital.sum(axis=0, dtype=np.int64)
        first = digital[0] if n else None
    else:
        for lo in range(0, n, max(1, int(chunk))):
            d = read_digital(base, header, lo, min(n, lo + chunk))
            if d.shape != (min(n, lo + chunk) - lo, header.n_sig):
                raise RecordError("truncated data", f"{header_path(base).name}: fewer samples than the header says")
            sums += d.sum(axis=0, dtype=np.int64)
            if first is None:
                first = d[0].copy()
    hea = header_path(base).name
    for j in stated:
        s = header.signals[j]
        where = f"{hea} does not match its data file {s.file_name}"
        if s.checksum is not None and (int(sums[j]) - s.checksum) % 65536:
            raise RecordError(
                "checksum mismatch",
                f"{where}: checksum of signal {s.name} does not match the data "
                f"(header field 7 says {s.checksum}, the data sum to {(int(sums[j]) + 32768) % 65536 - 32768})",
            )
        if s.init_value is not None and first is not None and int(first[j]) != s.init_value:
            raise RecordError(
                "checksum mismatch",
                f"{where}: first sample of {s.name} is {int(first[j])}, header field 6 (initial value) says {s.init_value}",
            )


def to_millivolts(d: np.ndarray, header: Header) -> np.ndarray:
    """Physical values in mV, float64 [samples, signals]; WFDB's missing-sample marker becomes NaN."""
    gain = np.array([s.adc_gain / UNITS_TO_MV[s.units] for s in header.signals])
    baseline = np.array(header.baseline, dtype=np.float64)
    invalid = np.array([INVALID_SAMPLE[s.fmt] for s in header.signals])
    with np.errstate(over="ignore"):
        x = (d - baseline) / gain
    x[d == invalid] = np.nan
    return x


def read_wfdb_record(base: Path, *, rate: int, min_samples: int) -> np.ndarray:
    """Physical signal (mV) of the WFDB record at `base` (path without extension) as float32
    [12, samples], leads in PTB-XL order. Raises RecordError for unusable records."""
    base = Path(base)
    hea = header_path(base)
    header = read_header(base)
    names = [n.upper() for n in header.sig_name]
    if header.n_sig != len(LEADS) or sorted(names) != sorted(LEADS):
        raise RecordError(
            "wrong leads", f"wrong leads: {header.n_sig} signals {header.sig_name}, expected the 12 standard leads"
        )
    if abs(header.fs - rate) > 1e-9 * rate:
        raise RecordError("wrong sampling rate", f"sampling rate {header.fs:g} Hz, expected {rate} Hz")
    if header.sig_len is not None and header.sig_len < min_samples:
        raise RecordError("too short", f"too short: {header.sig_len} samples, at least {min_samples} needed")
    if any(s.samps_per_frame != 1 for s in header.signals):
        raise RecordError("unsupported layout", f"{hea.name}: several samples per frame (multi-rate signals)")
    d = read_digital(base, header)
    n = d.shape[0]
    if n < min_samples:
        raise RecordError("too short", f"too short: {n} samples, at least {min_samples} needed")
    verify_data(base, header, digital=d)
    order = [names.index(lead) for lead in LEADS]
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused just below
        signal = np.ascontiguousarray(to_millivolts(d, header)[:, order].T, dtype=np.float32)
    bad = ~np.isfinite(signal).all(axis=1)
    if bad.any():
        raise RecordError("NaN samples", "NaN or infinite samples in lead(s) " + ",".join(np.asarray(LEADS)[bad]))
    return signal
