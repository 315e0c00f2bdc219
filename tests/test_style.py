"""Code habits the build enforces: ruff (lint and format) on Python, snakefmt and `snakemake --lint` on the
workflow. Versions are pinned in the test extra, so a formatter upgrade cannot fail a build by itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("cmd", [("check",), ("format", "--check")], ids=["ruff check", "ruff format --check"])
def test_ruff_is_clean(cmd):
    run = _run(sys.executable, "-m", "ruff", *cmd, ".")  # configuration: [tool.ruff] in pyproject.toml
    assert run.returncode == 0, f"ruff {' '.join(cmd)} .  (fix: ruff check --fix . && ruff format .)\n" + run.stdout


def test_snakefmt_is_clean():
    run = _run(sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules")
    assert run.returncode == 0, "snakefmt --check Snakefile rules  (fix: snakefmt Snakefile rules)\n" + run.stderr


def test_snakemake_lint_is_clean():
    run = _run(sys.executable, "-m", "snakemake", "-s", "Snakefile", "--lint")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
