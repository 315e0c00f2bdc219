"""Temporary folders named after their owner (host and process id).

A job killed mid-way (Ctrl-C twice, SIGKILL, a node lost) leaves its temporary folder behind.
Named `.<final>.<tag>-<host>-<pid>`, such a leftover is recognisable: a later run on the same
host removes the ones whose process is gone, and ignores those of other hosts (a cluster job
elsewhere may still be writing into a shared folder).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

__all__ = ["owned_temp", "remove_stale"]


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def owned_temp(final: str | os.PathLike, tag: str) -> Path:
    """The temporary path beside `final` that this process owns (not created here)."""
    final = Path(final)
    return final.with_name(f".{final.name}.{tag}-{_host()}-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(final: str | os.PathLike, tag: str) -> list[Path]:
    """Remove the temporary folders/files beside `final` left by dead processes of this host."""
    final = Path(final)
    prefix, host = f".{final.name}.{tag}-", _host()
    removed = []
    for path in final.parent.glob(f"{prefix}*") if final.parent.is_dir() else []:
        owner_host, _, pid = path.name[len(prefix) :].rpartition("-")
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
