"""A record's data must be the data its header describes, on every path that reads a record.

The header's checksum (16-bit sum of each signal's samples), initial value (first sample) and the
data file's size pin a `.dat` to its `.hea`. Training (`read_wfdb_record`), the `explain_record`
rule and the app's uploads (`prepare_user_record_scaled`) refuse a file that disagrees, naming the
files and the header field, instead of predicting another record's signal under this one's name.
The app's answer to such an upload (422) is in tests/test_app.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptbxl_xai.config import FilterSettings
from ptbxl_xai.data.ptbxl import LEADS
from ptbxl_xai.data.user_record import UserRecordError, prepare_user_record_scaled
from ptbxl_xai.data.wfdb_io import RecordError, read_digital, read_header, read_wfdb_record, verify_data

FIXTURES = Path(__file__).parent / "fixtures"
REAL = "records100/00000/00001_lr"  # real PTB-XL: format 16, with checksums and initial values
OTHER = "records100/00000/00008_lr"  # same size, another patient
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _copy(rel: str, folder: Path) -> Path:
    for ext in (".hea", ".dat"):
        shutil.copy(FIXTURES / f"{rel}{ext}", folder / f"{Path(rel).name}{ext}")
    return folder / Path(rel).name


def _wfdb_record(folder: Path, fmt: str, n: int = 1000) -> Path:
    """A 12-lead record at 100 Hz in `fmt`, written by wfdb (which states checksums and initial values)."""
    rng = np.random.default_rng(0)
    t = np.arange(n) / 100
    sig = 0.5 * np.sin(2 * np.pi * 1.2 * t)[:, None] + rng.normal(0, 0.05, (n, 12))
    wfdb.wrsamp("rec", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=sig, fmt=[fmt] * 12,
                adc_gain=[200.0] * 12, baseline=[0] * 12, write_dir=str(folder))  # fmt: skip
    return folder / "rec"


def _readers(base: Path):
    """Every path that reads a user's or a training record, as callables."""
    return {
        "training": lambda: read_wfdb_record(base, rate=100, min_samples=1000),
        "explain_record and uploads": lambda: prepare_user_record_scaled(base, FilterSettings(rate=100)),
    }


@pytest.mark.parametrize("fmt", ["16", "212"])
@PROPS
@given(data=st.data())
def test_any_changed_sample_is_refused_on_every_path(tmp_path_factory, fmt, data):
    """Change any one sample of any lead by any amount: every reader refuses the record. (The 16-bit
    checksum catches every single change in formats of at most 16 bits; that is why 24/32 are not here.)"""
    folder = tmp_path_factory.mktemp("rec")
    base = _copy(REAL, folder) if fmt == "16" else _wfdb_record(folder, fmt)
    header = read_header(base)
    d = read_digital(base, header).astype(np.int64)
    i = data.draw(st.integers(0, d.shape[0] - 1), label="sample")
    j = data.draw(st.integers(0, 11), label="lead")
    lo, hi = (-32767, 32767) if fmt == "16" else (-2047, 2047)
    new = data.draw(st.integers(lo, hi).filter(lambda v: v != d[i, j]), label="value")
    d[i, j] = new
    if fmt == "16":
        d.astype("<i2").tofile(folder / header.file_name[0])
    else:  # rewrite through wfdb with the header's original checksums and initial values kept
        hea_text = (folder / "rec.hea").read_text()
        wfdb.wrsamp("rec", fs=100, units=["mV"] * 12, sig_name=list(LEADS), d_signal=d.astype(np.int16),
                    fmt=[fmt] * 12, adc_gain=[200.0] * 12, baseline=[0] * 12, write_dir=str(folder))  # fmt: skip
        (folder / "rec.hea").write_text(hea_text)
    for read in _readers(base).values():
        with pytest.raises((RecordError, UserRecordError), match="does not match its data file"):
            read()


def test_another_records_data_of_the_same_size_is_refused_naming_files_and_field(tmp_path):
    base = _copy(REAL, tmp_path)
    shutil.copy(FIXTURES / f"{OTHER}.dat", tmp_path / "00001_lr.dat")  # the swap: same name, same size
    for read in _readers(base).values():
        with pytest.raises(
            (RecordError, UserRecordError),
            match=r"00001_lr.hea does not match its data file 00001_lr.dat: checksum of signal I .*header field 7 says",
        ):
            read()


@PROPS
@given(chunk=st.integers(1, 1200))
def test_the_chunked_check_reads_what_the_one_shot_check_reads(tmp_path_factory, chunk):
    """Any chunk size gives the same verdict: the good record passes, a change in its last sample fails."""
    folder = tmp_path_factory.mktemp("rec")
    base = _copy(REAL, folder)
    header = read_header(base)
    verify_data(base, header, chunk=chunk)  # no error
    dat = folder / "00001_lr.dat"
    raw = bytearray(dat.read_bytes())
    raw[-2] ^= 0x10  # last sample of the last lead: only a check that reads to the end sees it
    dat.write_bytes(bytes(raw))
    with pytest.raises(RecordError, match="checksum of signal V6"):
        verify_data(base, header, chunk=chunk)


def test_the_first_sample_is_checked_against_the_initial_value(tmp_path):
    base = _copy(REAL, tmp_path)
    lines = (tmp_path / "00001_lr.hea").read_text().splitlines()
    f = lines[2].split()
    f[5] = str(int(f[5]) + 1)  # lead II: the initial value off by one, the checksum right
    lines[2] = " ".join(f)
    (tmp_path / "00001_lr.hea").write_text("\n".join(lines) + "\n")
    for read in _readers(base).values():
        with pytest.raises((RecordError, UserRecordError), match=r"first sample of II is .*header field 6"):
            read()


def test_a_header_cannot_name_its_leads_without_stating_checksums(tmp_path):
    """WFDB fields are positional: without the initial value and checksum a line has no lead name, and
    a record whose leads have no names is refused, so no record is ever read unchecked."""
    base = _copy(REAL, tmp_path)
    lines = (tmp_path / "00001_lr.hea").read_text().splitlines()
    lines = lines[:1] + [" ".join(ln.split()[:5]) for ln in lines[1:13]] + lines[13:]  # up to ADC zero
    (tmp_path / "00001_lr.hea").write_text("\n".join(lines) + "\n")
    assert all(s.checksum is None and s.name == "" for s in read_header(base).signals)
    with pytest.raises(UserRecordError, match="the model needs the 12 standard leads"):
        prepare_user_record_scaled(base, FilterSettings(rate=100))
    with pytest.raises(RecordError, match="wrong leads"):
        read_wfdb_record(base, rate=100, min_samples=1000)


@pytest.mark.parametrize("fmt", ["212", "24", "32"])
def test_a_data_file_longer_or_shorter_than_its_header_is_refused_in_every_format(tmp_path, fmt):
    base = _wfdb_record(tmp_path, fmt)
    dat = tmp_path / "rec.dat"
    good = dat.read_bytes()
    read_wfdb_record(base, rate=100, min_samples=1000)  # as written: accepted
    dat.write_bytes(good + bytes(64))
    for read in _readers(base).values():
        with pytest.raises((RecordError, UserRecordError), match="size mismatch|has .* bytes; the header describes"):
            read()
    dat.write_bytes(good[:-64])
    for read in _readers(base).values():
        with pytest.raises((RecordError, UserRecordError), match="truncated data file rec.dat"):
            read()
