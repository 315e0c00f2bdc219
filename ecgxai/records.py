"""Reading PTB-XL WFDB records: `wfdb` parses the header, numpy reads format-16 data.

`numpy.fromfile` on a format-16 `.dat` is ~30x faster than `wfdb.rdsamp` per record; any other
format falls back to `wfdb.rdrecord`. Every way a record can be unusable raises `RecordError`
with a short reason, which preprocessing writes to the quality table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from .ptbxl import LEADS


class RecordError(Exception):
    """A record that cannot be used; `str(exc)` is the reason written to quality.tsv."""


def read_record(base: Path, *, rate: int, min_samples: int) -> np.ndarray:
    """Physical signal (mV) of the WFDB record at `base` (path without extension) as float32
    [12, samples], leads in PTB-XL order. Raises RecordError for unusable records."""
    hea = base.with_suffix(".hea")
    if not hea.is_file():
        raise RecordError(f"missing header file {hea.name}")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise RecordError(f"unreadable header {hea.name}: {type(exc).__name__}: {exc}".strip())
    names = [str(n).upper() for n in (header.sig_name or [])]
    if header.n_sig != len(LEADS) or sorted(names) != sorted(LEADS):
        raise RecordError(f"wrong leads: {header.n_sig} signals {names}, expected the 12 standard leads")
    if header.fs is None or round(float(header.fs)) != rate:
        raise RecordError(f"sampling rate {header.fs} Hz, expected {rate} Hz")
    n = int(header.sig_len or 0)
    if n < min_samples:
        raise RecordError(f"too short: {n} samples, at least {min_samples} needed")
    files = set(header.file_name)
    if len(files) != 1:
        raise RecordError(f"signals spread over {len(files)} files; one .dat per record expected")
    dat = base.parent / header.file_name[0]
    if not dat.is_file():
        raise RecordError(f"missing data file {dat.name}")

    simple = not any(header.byte_offset or []) and max(header.samps_per_frame or [1]) == 1
    if set(header.fmt) == {"16"} and simple:
        expected = n * header.n_sig * 2
        if dat.stat().st_size < expected:
            raise RecordError(f"truncated data file {dat.name}: {dat.stat().st_size} bytes, expected {expected}")
        digital = np.fromfile(dat, dtype="<i2", count=n * header.n_sig).reshape(n, header.n_sig)
        gain = np.asarray(header.adc_gain, dtype=np.float64)
        baseline = np.asarray(header.baseline, dtype=np.float64)
        if np.any(gain == 0):
            raise RecordError(f"zero ADC gain in {hea.name}")
        signal = ((digital - baseline) / gain).T
        # WFDB marks missing samples with the format's minimum (-32768).
        signal[digital.T == -32768] = np.nan
    else:
        try:
            signal = wfdb.rdrecord(str(base), physical=True).p_signal.T
        except Exception as exc:
            raise RecordError(f"unreadable data {dat.name}: {type(exc).__name__}: {exc}")
    order = [names.index(lead) for lead in LEADS]
    signal = np.ascontiguousarray(signal[order], dtype=np.float32)
    bad = ~np.isfinite(signal).all(axis=1)
    if bad.any():
        raise RecordError("NaN or infinite samples in lead(s) " + ",".join(np.asarray(LEADS)[bad]))
    return signal
