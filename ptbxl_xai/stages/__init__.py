"""The stage layer: one function per Snakemake rule, named after it, that reads the rule's inputs, computes (through
the compute packages) and writes its outputs. Keyword arguments carry the names of the rule's inputs, outputs and
params, so a workflow script passes them through."""

from __future__ import annotations

from pathlib import Path


def stem_of(main, **beside) -> Path:
    """The stem of the output `main` (a figure's .png, a table's .tsv), beside which the report's writers put
    its other formats; each of `beside` (suffix = the path a rule declares for it, None where not declared)
    must be that file."""
    stem = Path(main).with_suffix("")
    for suffix, path in beside.items():
        if path is not None and Path(path) != stem.with_suffix(f".{suffix}"):
            raise ValueError(f"{path}: the .{suffix} is written beside {main}, as {stem.with_suffix(f'.{suffix}')}")
    return stem
