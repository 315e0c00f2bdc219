"""Uploaded WFDB records: the multipart form, size caps, zips, and the per-request folder they live in.

A request body is read in memory up to the upload cap (nothing is spooled to the system temp
folder, unlike framework form parsing), parsed with python-multipart, and its files are written
into one fresh temporary folder per request, which `upload_folder` removes when the request ends:
the server keeps no upload.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

from ptbxl_xai.data.wfdb_io import RecordError, parse_header

FILE_FIELDS = ("hea", "dat", "zip")
TEXT_FIELDS = ("label", "ecg_id", "include_signal")
MAX_ZIP_MEMBERS = 64  # a record is a header and one or a few signal files; more is not a record
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class UploadError(ValueError):
    """An upload the server refuses; `status` is the HTTP status (4xx), the message says what is wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    """The parsed form: files by field name (name as sent, bytes) and text fields."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> str:
        """The uploaded file names, for messages ('rec.hea + rec.dat', 'rec.zip')."""
        return " + ".join(name for name, _ in self.files.values()) or "no file"


def check_size(size: int, cap: int) -> None:
    if size > cap:
        raise UploadError(413, f"upload too large: more than {cap / 2**20:g} MB (the server's upload cap)")


def parse_form(body: bytes, content_type: str | None) -> Upload:
    """Parse a multipart/form-data body (or a url-encoded one, which has no files); only the known
    fields are accepted, each at most once."""
    kind, params = parse_options_header(content_type or "")
    if kind == b"application/x-www-form-urlencoded":
        return _text_form(body)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(
            415, "expected a multipart/form-data upload with files `hea` and `dat`, or `zip` (or a form field `ecg_id`)"
        )
    parts: list[dict] = []
    header = {"name": b"", "value": b""}

    def on_part_begin():
        parts.append({"headers": {}, "data": []})

    def on_header_field(data, start, end):
        header["name"] += data[start:end]

    def on_header_value(data, start, end):
        header["value"] += data[start:end]

    def on_header_end():
        parts[-1]["headers"][header["name"].lower()] = header["value"]
        header["name"], header["value"] = b"", b""

    def on_part_data(data, start, end):
        parts[-1]["data"].append(data[start:end])

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types on malformed bodies
        raise UploadError(400, f"malformed multipart/form-data body: {exc}") from None

    upload = Upload()
    for part in parts:
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        data = b"".join(part["data"])
        if name in upload.files or name in upload.fields:
            raise UploadError(400, f"form field `{name}` given more than once")
        if b"filename" in options:
            if name not in FILE_FIELDS:
                raise UploadError(400, f"unexpected file field `{name}`; send `hea` and `dat`, or `zip`")
            filename = Path(options[b"filename"].decode("utf-8", "replace").replace("\\", "/")).name
            upload.files[name] = (filename or name, data)
        else:
            if name not in TEXT_FIELDS:
                raise UploadError(400, f"unexpected form field `{name}`; known fields: {FILE_FIELDS + TEXT_FIELDS}")
            upload.fields[name] = data.decode("utf-8", "replace").strip()
    return upload


def _text_form(body: bytes) -> Upload:
    upload = Upload()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UploadError(400, f"malformed url-encoded form: {exc}") from None
    for name, value in pairs:
        if name not in TEXT_FIELDS:
            raise UploadError(400, f"unexpected form field `{name}`; known fields: {FILE_FIELDS + TEXT_FIELDS}")
        if name in upload.fields:
            raise UploadError(400, f"form field `{name}` given more than once")
        upload.fields[name] = value.strip()
    return upload


# In memory where the system has it: an upload never touches a disk, and creating and removing a
# folder per request costs less there.
DEFAULT_ROOT = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@contextmanager
def upload_folder(root: str | Path | None = None):
    """A fresh folder for one request's files, removed with everything in it when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="ecgxai-upload-", dir=root or DEFAULT_ROOT))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _safe(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name):
        raise UploadError(400, f"{what}: file name {name!r} is not a plain file name (letters, digits, _ . -)")
    return name


def write_record_files(upload: Upload, folder: Path, cap: int) -> Path:
    """Write the uploaded record into `folder`; returns the path of its header.

    `hea` + `dat`: the signal file is saved under the name the header gives it (wfdb reads it by
    that name), whatever the browser called it. `zip`: one record's header and signal files.
    """
    files = upload.files
    if "zip" in files:
        if "hea" in files or "dat" in files:
            raise UploadError(400, "send either files `hea` and `dat`, or one `zip`, not both")
        return _extract_zip(*files["zip"], folder, cap)
    missing = [f for f in ("hea", "dat") if f not in files]
    if missing:
        have = ", ".join(f"`{k}`" for k in files) or "none"
        raise UploadError(
            400,
            f"missing file {' and '.join(f'`{m}`' for m in missing)}: a WFDB record is a .hea header and a .dat "
            f"signal file (or one zip of them); files sent: {have}",
        )
    hea_name, hea = files["hea"]
    dat_name, dat = files["dat"]
    if not hea.strip():
        raise UploadError(422, f"{hea_name}: empty header file")
    if not dat:
        raise UploadError(422, f"{dat_name}: empty signal file")
    header = folder / "record.hea"
    header.write_bytes(hea)
    signal_files = _signal_files(header, hea_name)
    if len(signal_files) != 1:
        raise UploadError(
            422, f"{hea_name}: the header names {len(signal_files)} signal files {signal_files}; upload them in a zip"
        )
    (folder / _safe(signal_files[0], hea_name)).write_bytes(dat)
    # under the name the user sent where it is plain, so that messages about it name their file
    if _SAFE_NAME.match(hea_name) and hea_name.endswith(".hea") and hea_name not in signal_files:
        header = header.rename(folder / hea_name)
    return header


def _signal_files(header: Path, shown: str) -> list[str]:
    """The signal file names a WFDB header lists (in order, without repeats), by the project's
    strict header parser (the same that reads the record afterwards)."""
    try:
        head = parse_header(header.read_bytes().decode("ascii"), shown)
    except UnicodeDecodeError as exc:
        raise UploadError(422, f"{shown}: unreadable WFDB header: not ASCII (byte {exc.start})") from None
    except RecordError as exc:
        raise UploadError(422, f"{shown}: unreadable WFDB header: {exc}") from None
    names = [str(n) for n in (head.file_name or [])]
    if not names:
        raise UploadError(422, f"{shown}: the header lists no signal file (a header without signals)")
    return list(dict.fromkeys(names))


def _extract_zip(name: str, data: bytes, folder: Path, cap: int) -> Path:
    """The one record in a zip: its .hea and the signal files that header names, flattened into `folder`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except Exception as exc:  # zipfile raises many types on malformed archives (struct.error, ValueError, ...)
        raise UploadError(400, f"{name}: not a zip archive ({type(exc).__name__}: {exc})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise UploadError(400, f"{name}: {len(members)} files; a zip of one WFDB record holds a few")
    # Sizes as declared; reads below stop at the cap too, so a lying header cannot inflate past it.
    check_size(sum(m.file_size for m in members), cap)
    by_base: dict[str, zipfile.ZipInfo] = {}
    for m in members:
        base = Path(m.filename.replace("\\", "/")).name
        if base.startswith(".") or m.filename.startswith("__MACOSX/"):
            continue  # macOS resource forks and hidden files
        if base in by_base:  # flattened, two members would be one file: which one is the record's?
            raise UploadError(
                400,
                f"{name}: two files named {base} ({by_base[base].filename}, {m.filename}); zip one record at a time",
            )
        by_base[base] = m
    headers = sorted(b for b in by_base if b.lower().endswith(".hea"))
    if not headers:
        raise UploadError(400, f"{name}: no .hea header in the zip (files: {sorted(by_base)[:10]})")
    if len(headers) > 1:
        raise UploadError(400, f"{name}: {len(headers)} headers {headers[:5]}; zip one record at a time")
    header = folder / _safe(headers[0], name)
    header.write_bytes(_read_member(archive, by_base[headers[0]], name, cap))
    signal_files = _signal_files(header, f"{name}: {headers[0]}")
    # signal files of another record (a .dat its header does not name): several records, not one
    others = sorted(b for b in by_base if b.lower().endswith(".dat") and b not in signal_files)
    if others:
        raise UploadError(
            400, f"{name}: {headers[0]} does not name {others[:5]}; the zip holds several records, zip one at a time"
        )
    for signal_file in signal_files:
        member = by_base.get(signal_file)
        if member is None:
            raise UploadError(400, f"{name}: {headers[0]} names signal file {signal_file}, which is not in the zip")
        (folder / _safe(signal_file, name)).write_bytes(_read_member(archive, member, name, cap))
    return header


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, cap: int) -> bytes:
    try:
        with archive.open(member) as f:
            data = f.read(cap + 1)
    except Exception as exc:  # encrypted (RuntimeError), bad deflate data (zlib.error), unknown method, ...
        raise UploadError(400, f"{name}: {member.filename} cannot be unpacked ({type(exc).__name__}: {exc})") from None
    check_size(len(data), cap)
    return data
