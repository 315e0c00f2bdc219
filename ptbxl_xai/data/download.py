"""Verified, resumable, atomic file downloads and safe archive extraction (stdlib HTTP only).

Invariants: a file appears at its destination only complete and (when a hash is
known) verified; partial data lives in ``<dest>.part`` so an interrupted download
resumes; corrupt data is deleted, never kept.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

USER_AGENT = "ecgxai-download/1.0 (+python urllib)"
# Transient HTTP answers worth retrying; every other 4xx is final.
RETRY_STATUS = {408, 429}


class DownloadError(RuntimeError):
    """A download failed for good (after retries where retrying made sense)."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not match the expected SHA-256; they were discarded."""


class LocalWriteError(DownloadError):
    """Writing on this machine failed (disk full, permissions): retrying cannot help."""


class NetworkError(DownloadError):
    """Every attempt failed before any HTTP answer (no route, DNS, refused connection)."""


class _Transient(Exception):
    """Internal: one attempt failed in a way that a retry may fix."""

    def __init__(self, message: str, network: bool = False):
        super().__init__(message)
        self.network = network  # no HTTP answer at all


def _local(what: str, path: Path, exc: OSError) -> LocalWriteError:
    return LocalWriteError(f"cannot {what} {path}: {exc.strerror or exc} (disk full or no permission?)")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (PTB-XL archives are gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$")


def parse_sha256sums(text: str) -> dict[str, str]:
    """Parse ``sha256sum``-style text (PhysioNet's SHA256SUMS.txt) into {relative path: hex}.

    Paths become local destinations, so absolute paths and ``..`` are rejected
    like any other malformed line.
    """
    sums: dict[str, str] = {}
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _SUM_LINE.match(line)
        if not m:
            raise ValueError(f"SHA256SUMS line {no} is malformed: {line!r}")
        digest, path = m.group(1).lower(), m.group(2).replace("\\", "/")
        path = path[2:] if path.startswith("./") else path
        parts = path.split("/")
        if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in parts or "" in parts:
            raise ValueError(f"SHA256SUMS line {no} has an unsafe path: {path!r}")
        if sums.get(path, digest) != digest:
            raise ValueError(f"SHA256SUMS line {no} lists {path!r} again with another hash")
        sums[path] = digest
    return sums


def _fsync_dir(folder: Path) -> None:
    """Persist a rename (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _finish(part: Path, dest: Path, url: str, sha256: str | None) -> Path:
    """Verify the completed ``.part`` and move it atomically onto ``dest``."""
    if sha256 is not None:
        try:
            actual = sha256_file(part)
        except OSError as e:
            raise _local("read back", part, e) from e
        if actual != sha256.lower():
            part.unlink(missing_ok=True)  # corrupt data is never kept, not even for a resume
            raise ChecksumError(
                f"SHA-256 mismatch downloading {url} to {dest}: expected {sha256.lower()}, "
                f"got {actual}; the data was discarded"
            )
    try:
        os.replace(part, dest)  # _copy_stream fsynced the data, so the rename never exposes a hole
    except OSError as e:
        raise _local("move into place", dest, e) from e
    _fsync_dir(dest.parent)
    return dest


def _copy_stream(
    src,
    part: Path,
    mode: str,
    have: int,
    total: int | None,
    desc: str,
    chunk_size: int,
    progress: bool,
    limit: int | None = None,
) -> int:
    """Append ``src`` to ``part``; return the bytes now in ``part``.

    A read error is the network's (``_Transient``); a write error is local and final
    (``LocalWriteError``); more than ``limit`` bytes in ``part`` is a broken server (DownloadError).
    """
    try:
        out = open(part, mode)
    except OSError as e:
        raise _local("open", part, e) from e
    with (
        out,
        tqdm(
            total=total,
            initial=have,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        while True:
            try:
                chunk = src.read(chunk_size)
            except (OSError, http.client.HTTPException) as e:
                raise _Transient(f"connection lost mid-body: {type(e).__name__}: {e}") from e
            if not chunk:
                break
            if limit is not None and have + len(chunk) > limit:
                out.close()
                part.unlink(missing_ok=True)
                raise DownloadError(f"{desc}: the server sent more than {limit} bytes (its announced size or the cap)")
            try:
                out.write(chunk)
            except OSError as e:
                raise _local("write", part, e) from e
            have += len(chunk)
            bar.update(len(chunk))
        try:
            out.flush()
            os.fsync(out.fileno())  # what we count as "have" for a resume must really be there
        except OSError as e:
            raise _local("write", part, e) from e
    return have


def _download_file_url(url: str, dest: Path, part: Path, sha256: str | None, chunk_size: int, progress: bool) -> Path:
    """``file://`` mirror: plain copy, same verification and atomic rename."""
    src_path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    try:
        with open(src_path, "rb") as src:
            _copy_stream(src, part, "wb", 0, src_path.stat().st_size, dest.name, chunk_size, progress)
    except (OSError, _Transient) as e:
        part.unlink(missing_ok=True)
        raise DownloadError(f"cannot copy {url} to {dest}: {e}") from e
    return _finish(part, dest, url, sha256)


def _attempt(
    url: str, dest: Path, part: Path, timeout: float, chunk_size: int, progress: bool, max_bytes: int | None
) -> None:
    """One HTTP request, resuming from ``part``. Returns when ``part`` holds the full body.

    Raises ``_Transient`` for failures a retry may fix, DownloadError otherwise.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and have:
                # Our .part is at or beyond the end: complete if sizes agree, else start over.
                m = re.match(r"bytes \*/(\d+)", e.headers.get("Content-Range", ""))
                if m and int(m.group(1)) == have:
                    return
                part.unlink(missing_ok=True)
                raise _Transient(f"HTTP 416 for a {have}-byte partial file; restarting from zero") from e
            what = f"HTTP {e.code} {e.reason}"
            if e.code >= 500 or e.code in RETRY_STATUS:
                raise _Transient(what) from e
            raise DownloadError(f"downloading {url} to {dest} failed: {what}") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _Transient(f"{type(e).__name__}: {getattr(e, 'reason', e)}", network=True) from e

    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and resp.status == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink(missing_ok=True)  # server resumed somewhere else: do not splice
                raise _Transient("206 with an unexpected Content-Range; restarting from zero")
            mode, start = "ab", have
        else:
            if have:
                log.info("server ignored the Range request for %s; restarting from zero", url)
            mode, start = "wb", 0  # a 200 is the whole file
        total = start + length if length is not None else None
        if total is not None and max_bytes is not None and total > max_bytes:
            raise DownloadError(f"{url} announces {total} bytes, more than the {max_bytes}-byte cap for one file")
        caps = [b for b in (total, max_bytes) if b is not None]
        limit = min(caps) if caps else None
        got = _copy_stream(resp, part, mode, start, total, dest.name, chunk_size, progress, limit)
    if total is not None and got < total:
        # http.client returns b"" on an early close instead of raising: check ourselves.
        raise _Transient(f"truncated body: {got} of {total} bytes")


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resumable, retried, verified, atomic); return ``dest``.

    ``retries`` is the total budget of attempts for this file: an attempt that added bytes still
    counts, so a server that trickles a few bytes per connection cannot keep it going forever
    (the ``.part`` stays, and a later run resumes from it). Between attempts it sleeps
    ``backoff * 2**attempt`` seconds. Local write errors (disk full, permissions) are final at
    once. At most ``max_bytes`` bytes are accepted (and never more than the server announced).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if sha256 is not None and dest.is_file() and sha256_file(dest) == sha256.lower():
        return dest  # already there and verified: no network at all
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _local("create the folder", dest.parent, e) from e
    if urllib.parse.urlparse(url).scheme == "file":
        return _download_file_url(url, dest, part, sha256, chunk_size, progress)

    attempts = 0
    while True:
        attempts += 1
        try:
            _attempt(url, dest, part, timeout, chunk_size, progress, max_bytes)
            return _finish(part, dest, url, sha256)
        except _Transient as e:
            if attempts >= max(1, retries):
                error = NetworkError if e.network else DownloadError
                raise error(f"downloading {url} to {dest} failed after {attempts} attempts: {e}") from e
            delay = backoff * 2 ** (attempts - 1)
            log.warning("%s (attempt %d of %d): %s; retrying in %.2fs", url, attempts, retries, e, delay)
            time.sleep(delay)


# ---------------------------------------------------------------- archives


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _check_members(archive: Path, target: str) -> None:
    """Refuse the whole archive if any member would land (or point) outside ``target``."""

    def refuse(name: str, why: str):
        raise ValueError(f"refusing to extract {archive}: member {name!r} {why}")

    def check_path(name: str) -> str:
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            refuse(name, "has an absolute path")
        full = os.path.normpath(os.path.join(target, name))
        if not _inside(target, full):
            refuse(name, "escapes the target folder")
        return full

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                check_path(name)
        return
    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            full = check_path(m.name)
            if m.issym():
                link = m.linkname
                dest = os.path.normpath(os.path.join(os.path.dirname(full), link))
                if os.path.isabs(link) or not _inside(target, dest):
                    refuse(m.name, f"is a symlink pointing outside ({link!r})")
            elif m.islnk():
                if os.path.isabs(m.linkname) or not _inside(target, os.path.normpath(os.path.join(target, m.linkname))):
                    refuse(m.name, f"is a hard link pointing outside ({m.linkname!r})")
            elif not (m.isfile() or m.isdir()):
                refuse(m.name, "is a device, FIFO or other special file")


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Extract a zip or tar(.gz) into ``target``; return the extracted files (final paths).

    Every member is checked before anything is written; extraction goes to a
    temporary folder next to ``target`` and is moved into place only once it all
    succeeded, so a refused or broken archive leaves ``target`` untouched.
    Top-level names that already exist in ``target`` are an error (nothing is overwritten).
    """
    archive, target = Path(archive), Path(target).absolute()
    if not (zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive)):
        raise ValueError(f"{archive} is neither a zip nor a tar archive")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract-", dir=target.parent))
    try:
        _check_members(archive, str(tmp))
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                # The "data" filter re-checks links at extraction time (chained symlinks).
                tf.extractall(tmp, filter="data")
        entries = sorted(tmp.iterdir())
        files = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if not p.is_dir() or p.is_symlink())
        clash = [e.name for e in entries if (target / e.name).exists()]
        if clash:
            raise FileExistsError(f"extracting {archive}: {target} already holds {clash}")
        target.mkdir(exist_ok=True)
        for e in entries:
            os.replace(e, target / e.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [target / f for f in files]
