"""A user's own WFDB record through the same preprocessing as the training data.

The header is parsed as strictly as the training records' (ptbxl_xai.data.wfdb_io): any WFDB storage
format, 12 standard leads matched by name (case-insensitive, any order), a sampling rate that is
present (wfdb would silently assume 250 Hz), finite and plausible for an ECG. A rate other than
the model's is resampled (polyphase, with anti-aliasing) and reported as a note rather than
refused. Only the window the model sees is read, plus a margin on each side for the zero-phase
filter, so a 24-hour Holter record costs the memory of a few seconds of signal. The whole data
file is first checked against the header in chunks (size, checksums, first samples), exactly as
training records are (`ptbxl_xai.data.wfdb_io.verify_data`).
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sps

from ptbxl_xai.data import conditioning as signal
from ptbxl_xai.data.normalization import standardize
from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.data.wfdb_io import (
    Header,
    RecordError,
    header_path,
    read_digital,
    read_header,
    signal_length,
    to_millivolts,
    verify_data,
)

log = logging.getLogger(__name__)

# Sampling rates an ECG recorder plausibly uses (PTB-XL: 100/500 Hz, Holters 128-1024 Hz).
MIN_RATE_HZ, MAX_RATE_HZ = 50.0, 20_000.0
# Read this much beyond the kept window on each side: the zero-phase band-pass's edge transient
# (its 0.5 Hz high-pass decays slowly) then falls outside what the model sees. Measured on a
# real record: 10 s leaves < 1e-5 (z-score units) of difference to filtering the whole record.
FILTER_MARGIN_S = 10.0


class UserRecordError(ValueError):
    """The user's record cannot be explained; the message names the file and the problem."""


def _base(path: str | Path) -> Path:
    """The record path without .hea/.dat; other dots belong to the name (``ecg.2024-01-01``)."""
    base = Path(path)
    return base.with_name(base.name[:-4]) if base.name.endswith((".hea", ".dat")) else base


def read_user_header(path: str | Path) -> tuple[Path, Header, list[int]]:
    """(record base, parsed header, column of each PTB-XL lead), or UserRecordError naming the file."""
    base = _base(path)
    hea = header_path(base)
    if not hea.is_file():
        raise UserRecordError(f"{hea}: WFDB header not found")
    try:
        header = read_header(base)
    except RecordError as exc:
        if exc.kind == "no sampling rate":
            raise UserRecordError(
                f"{hea}: no sampling rate in the header (wfdb would silently assume 250 Hz)"
            ) from None
        raise UserRecordError(f"{hea}: unreadable WFDB record: {exc}") from None
    names = [n.strip().upper() for n in header.sig_name]
    missing = [lead for lead in LEADS if lead not in names]
    if missing or len(set(names)) != len(names):
        raise UserRecordError(
            f"{hea}: {header.n_sig} signals {header.sig_name}; the model needs the 12 standard leads, missing {missing}"
        )
    if not (math.isfinite(header.fs) and MIN_RATE_HZ <= header.fs <= MAX_RATE_HZ):
        raise UserRecordError(
            f"{hea}: sampling rate {header.fs:g} Hz is not a plausible ECG rate ({MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz)"
        )
    if any(s.samps_per_frame != 1 for s in header.signals):
        raise UserRecordError(f"{hea}: several samples per frame (multi-rate signals) are not supported")
    return base, header, [names.index(lead) for lead in LEADS]


def read_user_record(path: str | Path, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, float, list[str]]:
    """(signal mV [12, stop - start] in PTB-XL lead order, sampling rate Hz, lead names as written).

    Only samples [start, stop) are read (all of them by default).
    """
    base, header, order = read_user_header(path)
    return _read_leads(base, header, order, start, stop), header.fs, list(header.sig_name)


def _read_leads(base: Path, header: Header, order: list[int], start: int, stop: int | None) -> np.ndarray:
    """Samples [start, stop) in mV [12, n], PTB-XL lead order, of a record whose header is parsed.
    The whole data file is checked against the header first (`verify_data`, in chunks), as training
    records are: a `.dat` that is not the header's is never explained under its name."""
    hea = header_path(base)
    try:
        d = read_digital(base, header, start, stop)
        verify_data(base, header, digital=d)
    except RecordError as exc:
        raise UserRecordError(f"{hea}: {exc}") from None
    x = to_millivolts(d, header)[:, order].T
    if not np.isfinite(x).all():
        bad = [lead for lead, row in zip(LEADS, x) if not np.isfinite(row).all()]
        raise UserRecordError(f"{hea}: NaN or infinite samples in lead(s) {bad}")
    return x


def _window(n: int, fs: float, settings: signal.FilterSettings) -> tuple[int, int]:
    """The samples [lo, hi) to read: the kept window plus an equal filter margin on each side,
    so that the centre (or start) crop of the conditioned window is the record's."""
    keep = math.ceil(settings.length_s * fs)
    if n <= keep:
        return 0, n
    start = (n - keep) // 2 if settings.crop == "center" else 0
    margin = min(math.ceil(FILTER_MARGIN_S * fs), start, n - start - keep)
    return start - margin, start + keep + margin


def prepare_user_record(
    path: str | Path, settings: signal.FilterSettings, lead_stats: dict | None = None
) -> tuple[np.ndarray, list[str]]:
    """The conditioned record [12, samples] the model expects, and notes on what was changed."""
    x, _scale, _offset, notes = prepare_user_record_scaled(path, settings, lead_stats)
    return x, notes


def prepare_user_record_scaled(
    path: str | Path, settings: signal.FilterSettings, lead_stats: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """`prepare_user_record` plus lead_scale and lead_offset [12]: mV = x * lead_scale + lead_offset
    (what the viewer draws, and what delineation reads). With `normalize: train_standard` the record goes
    through the training folds' scaler, `lead_stats` (`ptbxl_xai.data.normalization.load_lead_stats`)."""
    standard = settings.zscore and getattr(settings, "normalize", "record") == "train_standard"
    if standard and lead_stats is None:
        raise ValueError("normalize: train_standard needs the training folds' scaler (normalization.json)")
    base, header, order = read_user_header(path)  # parsed once per record
    hea = header_path(base)
    try:
        n = signal_length(base, header)
    except (RecordError, OSError) as exc:
        raise UserRecordError(f"{hea}: {exc}") from None
    fs, notes = header.fs, []
    if n < settings.min_length_s * fs:
        raise UserRecordError(f"{hea}: {n / fs:.1f} s long; at least {settings.min_length_s:g} s needed")
    lo, hi = _window(n, fs, settings)
    if n > hi - lo:
        notes.append(f"{n / fs:.1f} s long: the {settings.crop} {settings.length_s:g} s are used")
    x = _read_leads(base, header, order, lo, hi)
    if abs(fs - settings.rate) > 1e-9 * settings.rate:
        ratio = (Fraction(settings.rate) / Fraction(fs)).limit_denominator(1000)
        x = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
        notes.append(f"resampled from {fs:g} Hz to {settings.rate} Hz (the model was trained at {settings.rate} Hz)")
    flat = signal.flat_leads(x[None])[0]
    if flat.any():
        raise UserRecordError(f"{hea}: flat lead(s) {[lead for lead, f in zip(LEADS, flat) if f]}")
    out, scale, offset = (a[0] for a in signal.condition_scaled(x[None].astype(np.float32), settings))
    if standard:  # condition_scaled keeps mV (and pads with 0 mV) under train_standard, as preprocess does
        out, scale, offset = standardize(out, lead_stats)
    if not np.isfinite(out).all():  # e.g. values beyond float32 after scaling: never explained as an ECG
        bad = [lead for lead, row in zip(LEADS, out) if not np.isfinite(row).all()]
        raise UserRecordError(f"{hea}: the conditioned signal is not finite in lead(s) {bad}")
    for note in notes:
        log.info("%s: %s", hea, note)
    return out, scale, offset, notes
