"""Acquire the real PTB-XL v1.0.3 from PhysioNet, verified against its SHA256SUMS.txt.

Two ways in:
* ``mode="files"`` fetches only what the workflow needs (the two CSV tables, the
  licence and the records folders of the requested sampling rates), file by file,
  in parallel; an interrupted run continues where it stopped.
* ``mode="archive"`` fetches PhysioNet's single zip (all rates, ~1.7 GB) and
  extracts it; fewer requests, more bytes.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from ptbxl_xai.data.download import (
    ChecksumError,
    DownloadError,
    LocalWriteError,
    download,
    parse_sha256sums,
    safe_extract,
    sha256_file,
)
from ptbxl_xai.data.ptbxl import DATABASE_CSV, PHYSIONET_BASE_URL, RATES, SHA256SUMS, STATEMENTS_CSV
from ptbxl_xai.tempdirs import owned_temp, remove_stale

log = logging.getLogger(__name__)

PHYSIONET_ARCHIVE_URL = (
    "https://physionet.org/static/published-projects/ptb-xl/"
    "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3.zip"
)
LICENSE = "LICENSE.txt"
ALTERNATIVES = (
    "alternatives: a mirror with the same layout (data.physionet.base_url), an existing PTB-XL copy "
    "(data.source: local, data.path: its folder) or generated data (data.source: synthetic)"
)
MARKER = ".acquired.json"  # written last, only after a fully verified acquisition


def required_files(sums: dict[str, str], rates) -> list[str]:
    """The files of ``sums`` the workflow needs for ``rates`` (sorted relative paths)."""
    unknown = [r for r in rates if r not in RATES]
    if unknown:
        raise ValueError(f"unknown PTB-XL sampling rate(s) {unknown}; known: {sorted(RATES)}")
    missing = [f for f in (DATABASE_CSV, STATEMENTS_CSV) if f not in sums]
    prefixes = tuple(RATES[r][0] + "/" for r in rates)
    missing += [p for p in prefixes if not any(k.startswith(p) for k in sums)]
    if missing:
        raise ValueError(f"{SHA256SUMS} lists nothing for {missing}: not a PTB-XL release?")
    tables = {DATABASE_CSV, STATEMENTS_CSV, LICENSE}
    return sorted(k for k in sums if k in tables or k.startswith(prefixes))


def acquire_physionet(
    base_url: str | None,
    dest: str | os.PathLike,
    rates=(100,),
    *,
    mode: str = "files",
    threads: int = 4,
    retries: int = 5,
    backoff: float = 1.0,
    archive_url: str | None = None,
    archive_sha256: str | None = None,
    sums_sha256: str | None = None,
    max_file_mb: float = 32,
    max_archive_mb: float = 4096,
    progress: bool = True,
) -> Path:
    """Put a verified PTB-XL tree into ``dest`` and return ``dest``.

    ``sums_sha256`` (when known) pins SHA256SUMS.txt itself; ``max_file_mb``/``max_archive_mb``
    cap the bytes accepted for one file/the zip.

    ``base_url`` (None: PhysioNet) serves SHA256SUMS.txt and, in files mode, the files.
    Raises DownloadError (ChecksumError for bad data) when anything could not be
    fetched and verified; ``dest/.acquired.json`` exists only after a complete success.
    """
    base = base_url or PHYSIONET_BASE_URL
    base = base if base.endswith("/") else base + "/"
    dest = Path(dest).absolute()
    rates = tuple(int(r) for r in rates)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).unlink(missing_ok=True)  # a stale marker must not vouch for this run
    opts = dict(retries=retries, backoff=backoff, max_bytes=int(max_file_mb * 2**20))
    sums_opts = dict(opts, sha256=sums_sha256)

    if mode == "files":
        n = _acquire_files(base, dest, rates, threads, progress, opts, sums_opts)
        extra = {}
    elif mode == "archive":
        archive_url = archive_url or PHYSIONET_ARCHIVE_URL
        archive_opts = dict(opts, max_bytes=int(max_archive_mb * 2**20))
        n = _acquire_archive(base, dest, rates, archive_url, archive_sha256, threads, progress, archive_opts, sums_opts)
        extra = {"archive_url": archive_url, "archive_sha256": archive_sha256}
    else:
        raise ValueError(f"mode must be 'files' or 'archive', not {mode!r}")

    marker = {
        "source": "physionet",
        "mode": mode,
        "base_url": base,
        **extra,
        "rates": list(rates),
        "files": n,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = dest / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, dest / MARKER)
    log.info("PTB-XL acquired in %s (%d verified files, rates %s)", dest, n, list(rates))
    return dest


def _url(base: str, rel: str) -> str:
    return urllib.parse.urljoin(base, urllib.parse.quote(rel))


def _fetch_sums(base: str, into: Path, opts: dict) -> dict[str, str]:
    """Download SHA256SUMS.txt (the trust anchor: always fresh, never resumed) and parse it.

    Refused when it ends mid-line (a truncated body without Content-Length looks complete to
    HTTP), does not parse, or differs from ``sums_sha256``. Failing to fetch it at all is the
    first sign of no network: the error is one line naming the URL and the alternatives.
    """
    url, path = _url(base, SHA256SUMS), into / SHA256SUMS
    path.with_name(SHA256SUMS + ".part").unlink(missing_ok=True)
    try:
        download(url, path, progress=False, **opts)
    except (LocalWriteError, ChecksumError):
        raise
    except DownloadError as e:
        raise DownloadError(f"cannot fetch {url}: {str(e).split(' failed ', 1)[-1]}; {ALTERNATIVES}") from e
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if text and not text.endswith("\n"):
            raise ValueError(f"its last line is incomplete ({text.splitlines()[-1][:80]!r})")
        return parse_sha256sums(text)
    except ValueError as e:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url} is truncated or malformed: {e}; nothing was fetched") from None


def database_files(db: Path, rates) -> list[str]:
    """The record files (.hea and .dat) that ptbxl_database.csv names for ``rates``."""
    with open(db, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    files = []
    for rate in rates:
        column = RATES[rate][1]
        files += [
            f"{row[column].strip()}{ext}" for row in rows if (row.get(column) or "").strip() for ext in (".hea", ".dat")
        ]
    return files


def check_sums_cover(sums: dict[str, str], db: Path, rates, url: str) -> None:
    """Refuse a SHA256SUMS.txt that does not list every record file the database names."""
    missing = [f for f in database_files(db, rates) if f not in sums]
    if missing:
        raise DownloadError(
            f"{url} lists no hash for {len(missing)} file(s) that {DATABASE_CSV} names, e.g. {missing[:3]}: "
            "it is truncated or from another release"
        )


def _acquire_files(base: str, dest: Path, rates, threads: int, progress: bool, opts: dict, sums_opts: dict) -> int:
    sums = _fetch_sums(base, dest, sums_opts)
    files = required_files(sums, rates)
    stop = threading.Event()  # set by a local write error: no further file is started

    def fetch(rel: str) -> bool:
        """True if bytes were fetched, False if a verified copy was already there."""
        target = dest / rel
        if target.is_file() and sha256_file(target) == sums[rel]:
            return False
        if stop.is_set():
            raise DownloadError("not started: an earlier local write error stopped the download")
        download(_url(base, rel), target, sums[rel], progress=False, **opts)
        return True

    fetch(DATABASE_CSV)  # first: the sums must cover every record it names
    check_sums_cover(sums, dest / DATABASE_CSV, rates, _url(base, SHA256SUMS))
    log.info("%d files to check/fetch from %s for rates %s", len(files), base, list(rates))

    failed: dict[str, BaseException] = {}
    fetched = 0
    pool = ThreadPoolExecutor(max_workers=max(1, threads))
    try:
        futures = {pool.submit(fetch, rel): rel for rel in files}
        with tqdm(total=len(files), unit="file", desc="PTB-XL", file=sys.stderr, disable=not progress) as bar:
            for fut in as_completed(futures):
                rel = futures[fut]
                try:
                    fetched += fut.result()
                except LocalWriteError as e:  # disk full, permissions: every other file would fail too
                    stop.set()
                    for other in futures:
                        other.cancel()
                    raise LocalWriteError(f"{e}; download stopped, verified files kept in {dest}") from e
                except Exception as e:  # collect: one bad file must not stop the others
                    failed[rel] = e
                    log.error("%s: %s", rel, e)
                bar.update()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C or a local error: do not start queued files
    log.info("%d fetched, %d already present, %d failed", fetched, len(files) - fetched - len(failed), len(failed))
    if failed:
        shown = sorted(failed.items())[:50]
        lines = "\n".join(f"  {rel}: {err}" for rel, err in shown)
        more = f"\n  ... and {len(failed) - len(shown)} more" if len(failed) > len(shown) else ""
        raise DownloadError(
            f"{len(failed)} of {len(files)} PTB-XL files from {base} failed; the others are "
            f"verified in {dest} and a re-run fetches only what is missing:\n{lines}{more}"
        )
    return len(files)


def _acquire_archive(
    base: str,
    dest: Path,
    rates,
    archive_url: str,
    archive_sha256: str | None,
    threads: int,
    progress: bool,
    opts: dict,
    sums_opts: dict,
) -> int:
    # The zip lives next to dest (same file system) so an interrupted download resumes.
    zip_name = Path(urllib.parse.urlparse(archive_url).path).name or "ptb-xl.zip"
    zip_path = dest.parent / f".{dest.name}.{zip_name}"
    log.info("fetching %s", archive_url)
    download(archive_url, zip_path, archive_sha256, progress=progress, **opts)

    remove_stale(dest, "staging")  # extractions of killed runs (gigabytes each)
    staging = owned_temp(dest, "staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        tree = staging / "tree"
        safe_extract(zip_path, tree)
        roots = sorted((p.parent for p in tree.rglob(DATABASE_CSV)), key=lambda p: len(p.parts))
        if not roots:
            raise DownloadError(f"{archive_url} ({zip_path}) holds no {DATABASE_CSV}")
        root = roots[0]

        # Trust: the archive's own SHA256SUMS.txt only if the archive itself was verified;
        # otherwise the copy from base_url is the anchor (and replaces the archive's).
        if archive_sha256 is not None and (root / SHA256SUMS).is_file():
            sums = parse_sha256sums((root / SHA256SUMS).read_text(encoding="utf-8"))
        else:
            sums = _fetch_sums(base, staging, sums_opts)
            os.replace(staging / SHA256SUMS, root / SHA256SUMS)

        missing = [rel for rel in required_files(sums, rates) if not (root / rel).is_file()]
        if missing:
            raise DownloadError(f"{archive_url} lacks {len(missing)} required files, e.g. {missing[:5]}")
        check_sums_cover(sums, root / DATABASE_CSV, rates, f"{SHA256SUMS} of {archive_url}")
        # only what SHA256SUMS.txt vouches for is kept: an unlisted member is dropped, not trusted
        unlisted = [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() not in sums]
        unlisted = [p for p in unlisted if p.relative_to(root).as_posix() != SHA256SUMS]
        for p in unlisted:
            p.unlink()
        if unlisted:
            log.warning(
                "dropped %d archive member(s) that %s does not list, e.g. %s",
                len(unlisted),
                SHA256SUMS,
                [p.relative_to(root).as_posix() for p in unlisted[:3]],
            )
        present = [rel for rel in sums if (root / rel).is_file()]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # hashlib releases the GIL
            digests = pool.map(lambda rel: sha256_file(root / rel), present)
            bad = [rel for rel, d in zip(present, digests) if d != sums[rel]]
        if bad:
            raise ChecksumError(
                f"{len(bad)} files extracted from {archive_url} do not match "
                f"{SHA256SUMS}, e.g. {bad[:5]}; nothing was moved into {dest}"
            )

        for entry in root.iterdir():  # dest exists (maybe from an earlier run): replace per entry
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    zip_path.unlink(missing_ok=True)  # extracted and verified: the 1.7 GB zip is no longer needed
    return len(present)
