"""The package's layers: compute never imports presentation, and one module spells the results layout."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ptbxl_xai"
COMPUTE = ("data", "model", "evaluation", "explain")
UPWARD = ("ptbxl_xai.report", "ptbxl_xai.app", "ptbxl_xai.stages")


def _modules(*folders: str):
    for folder in folders:
        yield from sorted((PACKAGE / folder).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an `import` or `from ... import` names, at any depth (function-level imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("folder", COMPUTE)
def test_compute_packages_never_import_report_app_or_stages(folder):
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in _modules(folder)
        for line, name in _imports(path)
        if name.startswith(UPWARD)
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above can fail: a function-level import of the report layer is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ptbxl_xai.report.plots import checks\n    return checks\n")
    assert [n for _, n in _imports(module) if n.startswith(UPWARD)] == ["ptbxl_xai.report.plots"]


RESULT_PATH = re.compile(r"^results/(\S|$)")  # a path, not a sentence about results/


def test_only_the_layout_module_spells_a_results_path():
    """Paths under results/ come from `ptbxl_xai.layout`; a string literal starting with results/ elsewhere in
    the package is a second spelling of the layout that will drift."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # ast.walk visits an f-string's literal parts too: f"results/{run}" is seen as "results/"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RESULT_PATH.match(node.value):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
    assert not bad, "\n".join(bad)
