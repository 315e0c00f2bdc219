"""The `ecgxai` command: version, one `--help` per subcommand, synthetic data, one-line errors, a light start."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

from ptbxl_xai import cli

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SUBCOMMANDS = sorted(next(a for a in cli._parser()._actions if a.dest == "command").choices)


def ecgxai(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ptbxl_xai.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_the_distribution_is_the_one_pyproject_names():
    assert cli.DISTRIBUTION == PYPROJECT["name"] != "ecgxai"  # `ecgxai` on PyPI is another project
    assert PYPROJECT["scripts"]["ecgxai"] == "ptbxl_xai.cli:main"


def test_version_is_the_installed_one():
    import ptbxl_xai as package

    assert package.__version__ == PYPROJECT["version"]  # the fallback where the package is not installed
    try:
        expected = metadata.version(cli.DISTRIBUTION)
    except metadata.PackageNotFoundError:
        expected = package.__version__
    run = ecgxai("--version")
    assert run.returncode == 0 and run.stdout == f"ecgxai {expected}\n" and not run.stderr


def test_the_installed_script_is_the_cli():
    try:
        dist = metadata.distribution(cli.DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{cli.DISTRIBUTION} is not installed (pip install -e .)")
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    assert scripts == {"ecgxai": "ptbxl_xai.cli:main"}
    script = Path(sys.executable).parent / "ecgxai"
    if script.is_file():
        run = subprocess.run([str(script), "--version"], capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout == f"ecgxai {dist.version}\n"


def test_help_lists_every_subcommand():
    assert {"serve", "synthetic", "captions"} <= set(SUBCOMMANDS)
    run = ecgxai("--help")
    assert run.returncode == 0 and run.stdout.startswith("usage: ecgxai ")
    assert all(name in run.stdout for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name):
    run = ecgxai(name, "--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"usage: ecgxai {name} ") and not run.stderr


def test_help_and_version_import_nothing_heavy():
    heavy = ("numpy", "pandas", "scipy", "torch", "fastapi", "uvicorn", "wfdb", "ptbxl_xai.data", "ptbxl_xai.report")
    code = (
        "import sys\nfrom ptbxl_xai import cli\n"
        "for argv in (['--help'], ['--version'], ['synthetic', '--help'], ['serve', '--help']):\n"
        "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0 and run.stderr.strip() == "[]", run.stderr


def test_synthetic_rates_are_the_package_rates():
    from ptbxl_xai.data.ptbxl import RATES

    assert cli.SYNTHETIC_RATES == tuple(sorted(RATES))


def test_synthetic_writes_a_tiny_data_set(tmp_path):
    out = tmp_path / "ptbxl"
    run = ecgxai("synthetic", str(out), "--n-records", "1", "--rates", "100", "--seed", "5")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "fiducials.csv",
        "ptbxl_database.csv",
        "records100/00000/00001_lr.dat",
        "records100/00000/00001_lr.hea",
        "scp_statements.csv",
    ]
    assert len((out / "ptbxl_database.csv").read_text().splitlines()) == 2  # header and the one record


def test_the_old_module_forms_still_work(tmp_path):
    old = subprocess.run(
        [sys.executable, "-m", "ptbxl_xai.data.synthetic", str(tmp_path / "old"), "--n-records", "1", "--rates", "100"],
        capture_output=True,
        text=True,
    )
    new = ecgxai("synthetic", str(tmp_path / "new"), "--n-records", "1", "--rates", "100")
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    for name in ("ptbxl_database.csv", "records100/00000/00001_lr.dat"):
        assert (tmp_path / "old" / name).read_bytes() == (tmp_path / "new" / name).read_bytes()
    run = subprocess.run(
        [sys.executable, "-m", "ptbxl_xai.report.render", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: ecgxai captions "), run.stderr


def test_captions_writes_the_report_captions(tmp_path):
    run = ecgxai("captions", str(tmp_path))
    assert run.returncode == 0, run.stderr
    written = [Path(line) for line in run.stdout.splitlines()]
    assert written and all(p.parent == tmp_path and p.suffix == ".rst" for p in written)
    for path in written:  # report/ is these files (tests/test_readme.py checks it against the package too)
        assert path.read_text() == (REPO / "report" / path.name).read_text(), "regenerate: ecgxai captions report"


@pytest.mark.parametrize(
    "args, says",
    [
        ((), "required: COMMAND"),
        (("nosuch",), "invalid choice: 'nosuch'"),
        (("synthetic", "{out}", "--nosuch"), "unrecognized arguments: --nosuch"),
        (("serve",), "required: --run"),
        (("serve", "--run", "r", "--port", "eighty"), "argument --port: invalid int value"),
        (("synthetic",), "required: OUT"),
        (("synthetic", "{out}", "--n-records", "0"), "argument --n-records: must be >= 1"),
        (("synthetic", "{out}", "--n-records", "many"), "argument --n-records: not a whole number"),
        (("synthetic", "{out}", "--seed", "-1"), "argument --seed: must be >= 0"),
        (("synthetic", "{out}", "--rates", "250"), "argument --rates: invalid choice: 250"),
        (("synthetic", "{out}", "--records-per-patient", "3", "1"), "MIN must be <= MAX"),
        (("synthetic", "{out}", "--records-per-patient", "2"), "expected 2 arguments"),
        (("synthetic", "{file}/out", "--n-records", "1"), "ecgxai synthetic: "),  # OUT under a file: an OSError
        (("captions", "{file}"), "ecgxai captions: "),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, args, says):
    (tmp_path / "file").write_text("not a folder")
    args = [a.format(out=tmp_path / "out", file=tmp_path / "file") for a in args]
    run = ecgxai(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.endswith("\n") and run.stderr.count("\n") == 1, run.stderr
    assert says in run.stderr and "Traceback" not in run.stderr and not run.stdout, run.stderr
    assert not (tmp_path / "out").exists()  # nothing written on a bad argument
