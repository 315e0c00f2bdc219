"""Fresh virtual environments for the environment tests: built once per requirement list, then cached.

A venv is keyed by the Python version and its exact requirement list, built under a temporary name and renamed
when complete, so an interrupted build is never reused. Cache folder: $ECGXAI_VENV_CACHE, else
~/.cache/ptbxl_xai/venvs (CI keeps it between runs to save the downloads and installs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("ECGXAI_VENV_CACHE") or Path.home() / ".cache" / "ecgxai" / "venvs")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def pin_of(name: str) -> str:
    """The pyproject pin of a main dependency, e.g. 'snakemake[reports]==9.27.1'."""
    for dep in pyproject()["project"]["dependencies"]:
        if dep.split("==")[0].split("[")[0].lower() == name.lower():
            return dep
    raise KeyError(name)


def env_requirements(env_file: Path) -> list[str]:
    """The pip list of a conda environment file (envs/*.yaml)."""
    spec = yaml.safe_load(env_file.read_text())
    return list(next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d))


def venv_python(requirements: list[str], *, editable: Path | None = None) -> tuple[Path, dict]:
    """The python of a venv holding exactly `requirements` (and the project at `editable`, if given).

    Returns (python path, build record {"seconds": ..., "cached": bool}).
    """
    key_src = json.dumps([sys.version_info[:2], sorted(requirements), str(editable or "")])
    target = CACHE / hashlib.sha256(key_src.encode()).hexdigest()[:16]
    record = target / "build.json"
    _wait_for_other_builds(target)
    if record.is_file():
        return target / "bin" / "python", {**json.loads(record.read_text()), "cached": True}
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", *requirements]
    if editable:
        pip += ["-e", str(editable)]
    run = subprocess.run(pip, capture_output=True, text=True)
    if run.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"pip install {requirements} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    build = {"requirements": requirements, "editable": str(editable or ""), "seconds": time.monotonic() - started}
    (tmp / "build.json").write_text(json.dumps(build, indent=1))
    if target.exists():  # built meanwhile by another process
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(target)  # venvs run fine from a new path when started as `python -m ...`
    return target / "bin" / "python", {**build, "cached": False}


def _wait_for_other_builds(target: Path, poll_s: float = 10) -> None:
    """Another process building the same venv (.<key>.<pid>.tmp): wait for it rather than build it twice."""
    while True:
        alive = []
        for tmp in target.parent.glob(f".{target.name}.*.tmp"):
            try:
                os.kill(int(tmp.name.split(".")[2]), 0)
                alive.append(tmp)
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        if not alive:
            return
        time.sleep(poll_s)
