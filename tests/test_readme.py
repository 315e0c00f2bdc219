"""README's copy-paste commands are what CI runs."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b).strip()
    ci_lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines
    assert ci_lines[-1] == test_cmd  # the last thing CI does, so its exit status is CI's


def test_readme_main_command_runs_the_full_reproduction():
    blocks = re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)
    assert blocks[0].strip() == "pip install -e . && snakemake --cores all"


def test_report_captions_match_the_package():
    """report/*.rst are generated from the captions in ptbxl_xai.report.plots/ptbxl_xai.report.tables (no drift)."""
    from ptbxl_xai.report.render import all_captions

    for name, text in all_captions().items():
        assert (REPO / "report" / f"{name}.rst").read_text() == text + "\n", "regenerate: ecgxai captions report"
