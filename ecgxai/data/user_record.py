"""A user's own WFDB record through the same preprocessing as the training data.

Any WFDB format is read (with `wfdb`), the 12 standard leads are required (matched by name,
case-insensitive), and a sampling rate other than the model's is resampled (polyphase, with
anti-aliasing) and reported as a note rather than refused.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import wfdb
from scipy import signal as sps

from ecgxai.data import conditioning as signal
from ecgxai.data.ptbxl import LEADS

log = logging.getLogger(__name__)

# Rates ECG recorders use lie well inside this; outside, the header is wrong (wfdb reads "1e9" as 1 Hz).
PLAUSIBLE_RATE_HZ = (50.0, 20_000.0)


class UserRecordError(ValueError):
    """The user's record cannot be explained; the message names the file and the problem."""


def read_user_record(path: str | Path) -> tuple[np.ndarray, float, list[str]]:
    """(signal mV [12, n] in PTB-XL lead order, sampling rate Hz, lead names as written)."""
    base = Path(path)
    if base.suffix in (".hea", ".dat"):
        base = base.with_suffix("")
    hea = base.with_suffix(".hea")
    if not hea.is_file():
        raise UserRecordError(f"{hea}: WFDB header not found")
    try:
        rec = wfdb.rdrecord(str(base), physical=True)
    except Exception as exc:  # wfdb raises many types on malformed headers and data
        raise UserRecordError(f"{hea}: unreadable WFDB record: {type(exc).__name__}: {exc}") from None
    names = [str(n).strip().upper() for n in (rec.sig_name or [])]
    missing = [lead for lead in LEADS if lead not in names]
    if missing:
        raise UserRecordError(
            f"{hea}: {rec.n_sig} signals {rec.sig_name}; the model needs the 12 standard leads, missing {missing}"
        )
    x = rec.p_signal.T[[names.index(lead) for lead in LEADS]].astype(np.float64)
    if not np.isfinite(x).all():
        bad = [lead for lead, row in zip(LEADS, x) if not np.isfinite(row).all()]
        raise UserRecordError(f"{hea}: NaN or infinite samples in lead(s) {bad}")
    lo, hi = PLAUSIBLE_RATE_HZ
    if not (rec.fs and np.isfinite(rec.fs) and lo <= rec.fs <= hi):
        raise UserRecordError(f"{hea}: sampling rate {rec.fs!r} Hz is not plausible for an ECG ({lo:g}-{hi:g} Hz)")
    return x, float(rec.fs), list(rec.sig_name)


def prepare_user_record(path: str | Path, settings: signal.FilterSettings) -> tuple[np.ndarray, list[str]]:
    """The conditioned record [12, samples] the model expects, and notes on what was changed."""
    x, fs, _ = read_user_record(path)
    notes = []
    if round(fs) != settings.rate:
        ratio = Fraction(settings.rate, int(round(fs))).limit_denominator(1000)
        x = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
        notes.append(f"resampled from {fs:g} Hz to {settings.rate} Hz (the model was trained at {settings.rate} Hz)")
    n = x.shape[-1]
    if n < settings.min_samples:
        raise UserRecordError(f"{path}: {n / settings.rate:.1f} s long; at least {settings.min_length_s:g} s needed")
    if n > settings.samples:
        notes.append(f"{n / settings.rate:.1f} s long: the {settings.crop} {settings.length_s:g} s are used")
    flat = signal.flat_leads(x[None])[0]
    if flat.any():
        raise UserRecordError(f"{path}: flat lead(s) {[lead for lead, f in zip(LEADS, flat) if f]}")
    for note in notes:
        log.info("%s: %s", path, note)
    return signal.condition(x[None].astype(np.float32), settings)[0], notes
