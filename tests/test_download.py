"""Acquisition against a real local HTTP server (ranges, fault injection), no mocks."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import socket
import tarfile
import threading
import time
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ptbxl_xai.data.download import (
    ChecksumError,
    DownloadError,
    LocalWriteError,
    NetworkError,
    download,
    parse_sha256sums,
    safe_extract,
    sha256_file,
)
from ptbxl_xai.data.physionet import MARKER, acquire_physionet, required_files
from ptbxl_xai.data.ptbxl import SHA256SUMS, record_path

BIG = record_path(1, 100) + ".dat"  # 200 kB so that chunking and resuming matter
FAST = dict(backoff=0.01, progress=False)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def tree(tmp_path) -> Path:
    """A small PTB-XL-shaped tree with a SHA256SUMS.txt over it."""
    root = tmp_path / "srv"
    rnd = random.Random(0)
    files = {
        "ptbxl_database.csv": b"ecg_id,patient_id,filename_lr,filename_hr\n"
        b"1,1,records100/00000/00001_lr,records500/00000/00001_hr\n",
        "scp_statements.csv": b",description,diagnostic\nNORM,normal ECG,1.0\n",
        "LICENSE.txt": b"Creative Commons Attribution 4.0\n",
        "RECORDS": b"records100/00000/00001_lr\n",  # listed but not needed by the workflow
    }
    for ecg_id in (1, 2, 3):
        for rate in (100, 500):
            rec = record_path(ecg_id, rate)
            files[rec + ".hea"] = f"{Path(rec).name} 12 {rate} {rate * 10}\n".encode()
            files[rec + ".dat"] = rnd.randbytes(200_000 if rec + ".dat" == BIG else 3_000)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n" for rel, d in sorted(files.items()))
    (root / SHA256SUMS).write_text(sums)
    return root


class Faults:
    """Per-path misbehaviour, set by each test."""

    def __init__(self):
        self.fail: dict[str, tuple[int, int | None]] = {}  # path -> (status, first k requests | None=always)
        self.truncate: dict[str, tuple[int, int | None]] = {}  # path -> (bytes sent, first k | None)
        self.corrupt: set[str] = set()
        self.ignore_range: set[str] = set()
        self.stall: dict[str, float] = {}  # path -> seconds to hang on the first request
        self.no_length: set[str] = set()  # no Content-Length: the body ends when the connection closes


class Server:
    def __init__(self, root: Path):
        self.root, self.faults, self.log, self.lock = root, Faults(), [], threading.Lock()
        self.url = ""

    def gets(self, path: str | None = None) -> list:
        with self.lock:
            return [(p, r) for p, r in self.log if path is None or p == path]


def _handler(srv: Server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
            rng, f = self.headers.get("Range"), srv.faults
            with srv.lock:
                srv.log.append((rel, rng))
                nth = sum(p == rel for p, _ in srv.log)
            if rel in f.stall and nth == 1:
                time.sleep(f.stall[rel])
            if rel in f.fail and (f.fail[rel][1] is None or nth <= f.fail[rel][1]):
                return self.send_error(f.fail[rel][0])
            path = srv.root / rel
            if not path.is_file():
                return self.send_error(404)
            data = path.read_bytes()
            if rel in f.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            if rng and rel not in f.ignore_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            if rel not in f.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if rel in f.truncate and (f.truncate[rel][1] is None or nth <= f.truncate[rel][1]):
                body = body[: f.truncate[rel][0]]  # then the connection closes: a short body
            self.wfile.write(body)

    return Handler


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients that timed out: expected
        pass


@pytest.fixture
def server(tree):
    srv = Server(tree)
    httpd = _Quiet(("127.0.0.1", 0), _handler(srv))
    srv.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a CI proxy must not intercept localhost


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- download()


def test_plain_download_is_verified_and_atomic(server, tmp_path):
    out = tmp_path / "out" / "x.dat"
    got = download(server.url + BIG, out, sha(server.root / BIG), chunk_size=16_384, **FAST)
    assert got == out and out.read_bytes() == (server.root / BIG).read_bytes()
    assert not out.with_name("x.dat.part").exists()


def test_truncated_body_resumes_with_range(server, tmp_path):
    server.faults.truncate[BIG] = (50_000, 1)
    out = tmp_path / "x.dat"
    download(server.url + BIG, out, sha(server.root / BIG), chunk_size=16_384, **FAST)
    assert out.read_bytes() == (server.root / BIG).read_bytes()
    assert server.gets(BIG) == [(BIG, None), (BIG, "bytes=50000-")]


def test_a_trickling_server_cannot_reset_the_attempt_budget(server, tmp_path):
    # Every response is cut after 1 kB: each attempt progresses, but the budget is total.
    server.faults.truncate[BIG] = (1_000, None)
    out = tmp_path / "x.dat"
    with pytest.raises(DownloadError, match="failed after 3 attempts: truncated body"):
        download(server.url + BIG, out, sha(server.root / BIG), retries=3, chunk_size=512, **FAST)
    assert len(server.gets(BIG)) == 3
    assert out.with_name("x.dat.part").stat().st_size == 3_000  # kept: a later run resumes from it


def test_a_full_disk_is_final_at_once(server, tmp_path):
    out = tmp_path / "x.dat"
    out.with_name("x.dat.part").symlink_to("/dev/full")  # a path that fails to write (ENOSPC)
    with pytest.raises(LocalWriteError, match="cannot write .*x.dat.part: No space left on device"):
        download(server.url + BIG, out, sha(server.root / BIG), retries=5, backoff=60, progress=False)
    assert len(server.gets(BIG)) == 1  # no retry (and no 60 s backoff)


def test_more_bytes_than_the_cap_is_an_error(server, tmp_path):
    server.faults.no_length.add(BIG)  # nothing announced: only the cap bounds the body
    out = tmp_path / "x.dat"
    with pytest.raises(DownloadError, match="sent more than 100000 bytes"):
        download(server.url + BIG, out, retries=5, max_bytes=100_000, **FAST)
    assert len(server.gets(BIG)) == 1 and not out.exists() and not out.with_name("x.dat.part").exists()
    server.faults.no_length.clear()  # announced but above the cap: refused before the body
    with pytest.raises(DownloadError, match="announces 200000 bytes, more than the 100000-byte cap"):
        download(server.url + BIG, out, max_bytes=100_000, **FAST)


def test_existing_part_is_resumed(server, tmp_path):
    out = tmp_path / "x.dat"
    src = (server.root / BIG).read_bytes()
    out.with_name("x.dat.part").write_bytes(src[:123_456])
    download(server.url + BIG, out, sha(server.root / BIG), **FAST)
    assert out.read_bytes() == src and server.gets(BIG) == [(BIG, "bytes=123456-")]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.faults.ignore_range.add(BIG)
    out = tmp_path / "x.dat"
    out.with_name("x.dat.part").write_bytes(b"stale bytes from elsewhere")
    download(server.url + BIG, out, sha(server.root / BIG), **FAST)
    assert out.read_bytes() == (server.root / BIG).read_bytes()


def test_416_with_complete_part_finishes(server, tmp_path):
    out = tmp_path / "x.dat"
    out.with_name("x.dat.part").write_bytes((server.root / BIG).read_bytes())
    download(server.url + BIG, out, sha(server.root / BIG), **FAST)
    assert sha(out) == sha(server.root / BIG)
    assert server.gets(BIG) == [(BIG, "bytes=200000-")]


def test_416_with_oversized_part_restarts(server, tmp_path):
    out = tmp_path / "x.dat"
    out.with_name("x.dat.part").write_bytes((server.root / BIG).read_bytes() + b"junk")
    download(server.url + BIG, out, sha(server.root / BIG), **FAST)
    assert sha(out) == sha(server.root / BIG)
    assert server.gets(BIG) == [(BIG, "bytes=200004-"), (BIG, None)]


def test_corrupt_bytes_raise_and_leave_nothing(server, tmp_path):
    server.faults.corrupt.add(BIG)
    out = tmp_path / "x.dat"
    url, expected = server.url + BIG, sha(server.root / BIG)
    with pytest.raises(ChecksumError) as err:
        download(url, out, expected, **FAST)
    msg = str(err.value)
    assert url in msg and str(out) in msg and expected in msg and "got " in msg
    assert not out.exists() and not out.with_name("x.dat.part").exists()


@pytest.mark.parametrize("status", [503, 500, 429, 408])
def test_transient_status_is_retried(server, tmp_path, status):
    rel = "scp_statements.csv"
    server.faults.fail[rel] = (status, 2)
    out = tmp_path / rel
    download(server.url + rel, out, sha(server.root / rel), retries=5, **FAST)
    assert out.read_bytes() == (server.root / rel).read_bytes()
    assert len(server.gets(rel)) == 3


def test_persistent_500_gives_up_after_retries(server, tmp_path):
    rel = "scp_statements.csv"
    server.faults.fail[rel] = (500, None)
    out = tmp_path / rel
    with pytest.raises(DownloadError) as err:
        download(server.url + rel, out, retries=3, **FAST)
    assert server.url + rel in str(err.value) and "HTTP 500" in str(err.value)
    assert str(out) in str(err.value)
    assert len(server.gets(rel)) == 3 and not out.exists()


def test_404_fails_without_retry(server, tmp_path):
    out = tmp_path / "missing.dat"
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download(server.url + "missing.dat", out, retries=5, **FAST)
    assert server.url + "missing.dat" in str(err.value)
    assert len(server.gets("missing.dat")) == 1
    assert not out.exists() and not out.with_name("missing.dat.part").exists()


def test_timeout_is_retried(server, tmp_path):
    rel = "LICENSE.txt"
    server.faults.stall[rel] = 0.6
    out = tmp_path / rel
    download(server.url + rel, out, sha(server.root / rel), timeout=0.2, **FAST)
    assert out.read_bytes() == (server.root / rel).read_bytes() and len(server.gets(rel)) == 2


def test_connection_refused_is_retried_then_reported(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(NetworkError, match="after 2 attempts") as err:
        download(url, tmp_path / "x", retries=2, **FAST)
    assert url in str(err.value)


def test_verified_dest_needs_no_network(server, tmp_path):
    out = tmp_path / "x.dat"
    out.write_bytes((server.root / BIG).read_bytes())
    download(server.url + BIG, out, sha(server.root / BIG), **FAST)
    assert server.gets() == []
    out.write_bytes(b"outdated")  # a wrong copy is replaced
    download(server.url + BIG, out, sha(server.root / BIG), **FAST)
    assert sha(out) == sha(server.root / BIG) and len(server.gets()) == 1


def test_file_url(tree, tmp_path):
    src = tree / BIG
    out = tmp_path / "x.dat"
    download(src.as_uri(), out, sha(src), **FAST)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(ChecksumError):
        download(src.as_uri(), tmp_path / "y.dat", "0" * 64, **FAST)
    assert not (tmp_path / "y.dat").exists() and not (tmp_path / "y.dat.part").exists()
    with pytest.raises(DownloadError, match="nope"):
        download((tree / "nope").as_uri(), tmp_path / "z", **FAST)


# ---------------------------------------------------------------- helpers


def test_parse_sha256sums():
    a, b = "a" * 64, "B" * 64
    text = f"{a}  LICENSE.txt\n\n{b} *records100/00000/00001_lr.dat\r\n{a}  ./RECORDS\n"
    assert parse_sha256sums(text) == {"LICENSE.txt": a, "records100/00000/00001_lr.dat": b.lower(), "RECORDS": a}
    with pytest.raises(ValueError, match="line 3"):
        parse_sha256sums(f"{a}  x\n\nnot-a-hash  y\n")
    with pytest.raises(ValueError, match="line 1.*unsafe"):
        parse_sha256sums(f"{a}  ../etc/passwd\n")
    with pytest.raises(ValueError, match="line 1.*unsafe"):
        parse_sha256sums(f"{a}  /etc/passwd\n")


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()


def test_required_files(tree):
    sums = parse_sha256sums((tree / SHA256SUMS).read_text())
    files = required_files(sums, (100,))
    assert "RECORDS" not in files and not any(f.startswith("records500/") for f in files)
    assert {"ptbxl_database.csv", "scp_statements.csv", "LICENSE.txt", BIG} <= set(files)
    assert len(files) == 3 + 6
    assert len(required_files(sums, (100, 500))) == 3 + 12
    with pytest.raises(ValueError, match="250"):
        required_files(sums, (250,))


# ---------------------------------------------------------------- safe_extract


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            data = b"payload" if info.isfile() else None
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    "case", ["zip-dotdot", "tar-absolute", "tar-symlink-out", "tar-abs-symlink", "tar-hardlink-out"]
)
def test_safe_extract_refuses_escapes(tmp_path, case):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("untouched")
    ok = tarfile.TarInfo("ok/file.txt")
    if case == "zip-dotdot":
        archive, bad = _zip(tmp_path / "a.zip", {"ok/file.txt": b"x", "../evil": b"x"}), "../evil"
    else:
        bad_member = {
            "tar-absolute": tarfile.TarInfo("/tmp/evil"),
            "tar-symlink-out": _link("ok/link", "../../outside"),
            "tar-abs-symlink": _link("ok/link", "/etc/passwd"),
            "tar-hardlink-out": _link("ok/hard", "../outside", tarfile.LNKTYPE),
        }[case]
        archive, bad = _tar(tmp_path / "a.tar.gz", [ok, bad_member]), bad_member.name
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError) as err:
        safe_extract(archive, target)
    assert str(archive) in str(err.value) and repr(bad) in str(err.value)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no evil file, no temp folder


def test_safe_extract_zip_and_tar(tmp_path):
    z = _zip(tmp_path / "a.zip", {"top/a.txt": b"A", "top/sub/b.txt": b"B"})
    files = safe_extract(z, tmp_path / "tz")
    assert files == [tmp_path / "tz/top/a.txt", tmp_path / "tz/top/sub/b.txt"]
    assert (tmp_path / "tz/top/sub/b.txt").read_bytes() == b"B"
    t = _tar(tmp_path / "a.tar.gz", [tarfile.TarInfo("d/f.txt"), _link("d/l", "f.txt")])
    files = safe_extract(t, tmp_path / "tt")
    assert (tmp_path / "tt/d/f.txt").read_bytes() == b"payload" and tmp_path / "tt/d/l" in files
    with pytest.raises(FileExistsError):  # never overwrites what is there
        safe_extract(t, tmp_path / "tt")


# ---------------------------------------------------------------- acquire_physionet


def _file_gets(server) -> list[str]:
    return [p for p, _ in server.gets()]


def test_acquire_files_selects_rates_and_marks(server, tmp_path):
    dest = tmp_path / "ptbxl"
    assert acquire_physionet(server.url, dest, (100,), threads=3, **FAST) == dest
    sums = parse_sha256sums((server.root / SHA256SUMS).read_text())
    wanted = required_files(sums, (100,))
    for rel in wanted:
        assert sha(dest / rel) == sums[rel]
    assert (dest / SHA256SUMS).read_bytes() == (server.root / SHA256SUMS).read_bytes()
    gets = _file_gets(server)
    assert gets[0] == SHA256SUMS and not any(p.startswith("records500/") for p in gets)
    assert "RECORDS" not in gets and not (dest / "records500").exists()
    marker = json.loads((dest / MARKER).read_text())
    assert marker["source"] == "physionet" and marker["base_url"] == server.url
    assert marker["rates"] == [100] and marker["files"] == len(wanted) and marker["time"]

    server.log.clear()  # a re-run only re-reads the trust anchor
    acquire_physionet(server.url, dest, (100,), **FAST)
    assert _file_gets(server) == [SHA256SUMS]


def test_acquire_both_rates_with_truncation(server, tmp_path):
    server.faults.truncate[BIG] = (10_000, 1)
    dest = tmp_path / "ptbxl"
    acquire_physionet(server.url.rstrip("/"), dest, (100, 500), **FAST)
    assert sha(dest / BIG) == sha(server.root / BIG)
    assert (dest / (record_path(3, 500) + ".dat")).is_file()
    assert json.loads((dest / MARKER).read_text())["files"] == 15


def test_acquire_reports_failed_file_and_keeps_others(server, tmp_path):
    bad = record_path(2, 100) + ".dat"
    server.faults.fail[bad] = (500, None)
    dest = tmp_path / "ptbxl"
    with pytest.raises(DownloadError) as err:
        acquire_physionet(server.url, dest, (100,), retries=2, **FAST)
    assert bad in str(err.value) and "1 of 9" in str(err.value)
    sums = parse_sha256sums((server.root / SHA256SUMS).read_text())
    for rel in required_files(sums, (100,)):
        if rel != bad:
            assert sha(dest / rel) == sums[rel]
    assert not (dest / bad).exists() and not (dest / MARKER).exists()

    del server.faults.fail[bad]  # the re-run continues with just what is missing
    server.log.clear()
    acquire_physionet(server.url, dest, (100,), **FAST)
    assert sorted(_file_gets(server)) == sorted([SHA256SUMS, bad]) and (dest / MARKER).exists()


def test_acquire_from_file_mirror(tree, tmp_path):
    dest = tmp_path / "ptbxl"
    acquire_physionet(tree.as_uri() + "/", dest, (100,), **FAST)
    assert sha(dest / BIG) == sha(tree / BIG) and (dest / MARKER).exists()


def _served_zip(server, name="ptbxl.zip", tamper=None) -> tuple[str, str]:
    """Zip the tree as PhysioNet does (one top folder, SHA256SUMS.txt inside); serve it."""
    out = server.root.parent / name
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(server.root.rglob("*")):
            if p.is_file():
                rel = p.relative_to(server.root).as_posix()
                data = b"tampered" if rel == tamper else p.read_bytes()
                zf.writestr(f"ptb-xl-1.0.3/{rel}", data)
    (server.root / "archives").mkdir(exist_ok=True)
    (server.root / "archives" / name).write_bytes(out.read_bytes())
    return server.url + "archives/" + name, sha(out)


def test_acquire_archive_end_to_end(server, tmp_path):
    url, digest = _served_zip(server)
    dest = tmp_path / "data" / "ptbxl"
    acquire_physionet(server.url, dest, (100,), mode="archive", archive_url=url, archive_sha256=digest, **FAST)
    for p in server.root.rglob("*"):
        if p.is_file() and not p.relative_to(server.root).parts[0] == "archives":
            assert (dest / p.relative_to(server.root)).read_bytes() == p.read_bytes()
    assert _file_gets(server) == ["archives/ptbxl.zip"]  # verified zip: its own sums are trusted
    marker = json.loads((dest / MARKER).read_text())
    assert marker["mode"] == "archive" and marker["archive_url"] == url
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ptbxl"]  # no zip, no staging left


def test_acquire_archive_rejects_tampered_content(server, tmp_path):
    url, _ = _served_zip(server, tamper=BIG)
    dest = tmp_path / "data" / "ptbxl"
    with pytest.raises(ChecksumError, match=re.escape(BIG)):
        acquire_physionet(server.url, dest, (100,), mode="archive", archive_url=url, **FAST)
    assert SHA256SUMS in _file_gets(server)  # unverified zip: the anchor came from base_url
    assert list(dest.iterdir()) == [] and not any(".staging-" in p.name for p in dest.parent.iterdir())


# ---------------------------------------------------------------- failure paths of acquire_physionet


def test_a_full_disk_stops_the_whole_acquisition_at_once(server, tmp_path):
    dest = tmp_path / "ptbxl"
    (dest / BIG).parent.mkdir(parents=True)
    (dest / (BIG + ".part")).symlink_to("/dev/full")
    with pytest.raises(LocalWriteError, match="No space left on device.*download stopped"):
        acquire_physionet(server.url, dest, (100,), threads=1, retries=5, backoff=60, progress=False)
    gets = _file_gets(server)
    assert gets.count(BIG) == 1  # not retried
    assert record_path(3, 100) + ".dat" not in gets  # files queued after it were never started
    assert not (dest / MARKER).exists()


def _rewrite_sums(server, text: str) -> None:
    (server.root / SHA256SUMS).write_text(text)


def test_sums_cut_mid_line_without_content_length_are_refused(server, tmp_path):
    text = (server.root / SHA256SUMS).read_text()
    server.faults.no_length.add(SHA256SUMS)
    server.faults.truncate[SHA256SUMS] = (len(text) - 10, None)  # the connection closes mid-line
    with pytest.raises(DownloadError, match="SHA256SUMS.txt is truncated or malformed: its last line is incomplete"):
        acquire_physionet(server.url, tmp_path / "ptbxl", (100,), **FAST)
    assert _file_gets(server) == [SHA256SUMS]  # nothing fetched on its word


def test_sums_shorter_than_content_length_are_refused(server, tmp_path):
    server.faults.truncate[SHA256SUMS] = (100, None)
    with pytest.raises(DownloadError, match=r"truncated body: \d+ of \d+ bytes"):
        acquire_physionet(server.url, tmp_path / "ptbxl", (100,), retries=2, **FAST)
    assert set(_file_gets(server)) == {SHA256SUMS}


def test_sums_that_miss_a_record_of_the_database_are_refused(server, tmp_path):
    hea = record_path(1, 100) + ".hea"
    text = (server.root / SHA256SUMS).read_text()
    _rewrite_sums(server, "".join(line + "\n" for line in text.splitlines() if not line.endswith(hea)))
    with pytest.raises(
        DownloadError, match=rf"lists no hash for 1 file\(s\) that ptbxl_database.csv names, e.g. \['{hea}'\]"
    ):
        acquire_physionet(server.url, tmp_path / "ptbxl", (100,), **FAST)
    assert sorted(_file_gets(server)) == sorted([SHA256SUMS, "ptbxl_database.csv"])


def test_the_sha256_of_the_sums_is_checked_when_configured(server, tmp_path):
    digest = sha(server.root / SHA256SUMS)
    acquire_physionet(server.url, tmp_path / "ok", (100,), sums_sha256=digest, **FAST)
    with pytest.raises(ChecksumError, match="SHA-256 mismatch downloading .*SHA256SUMS.txt"):
        acquire_physionet(server.url, tmp_path / "bad", (100,), sums_sha256="0" * 64, **FAST)
    assert not (tmp_path / "bad" / SHA256SUMS).exists()


def test_no_network_is_one_line_naming_the_url_and_the_alternatives(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/ptb-xl/"
    with pytest.raises(DownloadError) as err:
        acquire_physionet(base, tmp_path / "ptbxl", (100,), retries=2, **FAST)
    message = str(err.value)
    assert "\n" not in message and base + SHA256SUMS in message
    for alternative in ("data.physionet.base_url", "data.source: local", "data.source: synthetic"):
        assert alternative in message


def test_the_workflow_script_shows_one_line_and_logs_the_traceback(tmp_path):
    from ptbxl_xai.runlog import logged

    log = tmp_path / "acquire.log"
    with pytest.raises(SystemExit) as exit_:
        with logged(log, brief=(DownloadError,)):
            raise DownloadError("cannot fetch http://x/SHA256SUMS.txt: ...; alternatives: ...")
    assert str(exit_.value.code) == "cannot fetch http://x/SHA256SUMS.txt: ...; alternatives: ..."
    assert "Traceback" in log.read_text() and "DownloadError" in log.read_text()


def test_archive_keeps_only_the_files_the_sums_list(server, tmp_path):
    (server.root / "records100" / "00000" / "evil.py").write_text("print('not PTB-XL')\n")  # not in the sums
    url, digest = _served_zip(server)
    dest = tmp_path / "ptbxl"
    acquire_physionet(server.url, dest, (100,), mode="archive", archive_url=url, archive_sha256=digest, **FAST)
    assert (dest / BIG).is_file() and not (dest / "records100" / "00000" / "evil.py").exists()


def test_a_killed_archive_extraction_is_cleaned_up_by_the_rerun(server, tmp_path):
    """Archive mode: a killed run's staging folder (gigabytes) is removed, the rerun completes."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    url, digest = _served_zip(server)
    dest = tmp_path / "data" / "ptbxl"
    host = socket.gethostname().replace("-", "_")
    stale = dest.parent / f".ptbxl.staging-{host}-{dead.pid}"
    (stale / "tree").mkdir(parents=True)
    acquire_physionet(server.url, dest, (100,), mode="archive", archive_url=url, archive_sha256=digest, **FAST)
    assert not stale.exists() and (dest / MARKER).exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ptbxl"]
