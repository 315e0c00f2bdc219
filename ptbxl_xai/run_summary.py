"""What the terminal says when a run ends: where to look after success, which log to read after a failure.

Standard library only: the Snakefile's onsuccess/onerror handlers call it in the Snakemake process.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

from ptbxl_xai.config import EXPLANATION_FIGURES, PERFORMANCE_FIGURES
from ptbxl_xai.layout import RESULTS

REPORT = RESULTS.report()


def data_line(workdir: Path) -> str | None:
    """'synthetic PTB-XL at resources/x: 298 of 300 records kept, 2 quarantined (results/data/quality.tsv)'."""
    manifest_path, quality_path = workdir / RESULTS.source_manifest(), workdir / RESULTS.quality()
    if not (manifest_path.is_file() and quality_path.is_file()):
        return None
    manifest = json.loads(manifest_path.read_text())
    with open(quality_path, newline="") as f:
        quarantined = {row["ecg_id"] for row in csv.DictReader(f, delimiter="\t")}
    root = Path(manifest.get("root", ""))
    database = root if root.is_absolute() else workdir / root
    total = None
    if (database / "ptbxl_database.csv").is_file():
        with open(database / "ptbxl_database.csv", newline="") as f:
            total = sum(1 for _ in csv.DictReader(f))
    counts = (
        f"{total - len(quarantined)} of {total} records kept, {len(quarantined)} quarantined"
        if total is not None
        else f"{len(quarantined)} records quarantined"
    )
    rate = manifest.get("sampling_rate")
    return f"{manifest.get('source', '?')} PTB-XL at {root} ({rate} Hz): {counts} (reasons: {quality_path.relative_to(workdir)})"


def _existing(workdir: Path, *paths: str) -> list[str]:
    return [p for p in paths if (workdir / p).is_file()]


def success_message(workdir, runs, user_records=(), configfiles=(), config_options: bool = False) -> str:
    """Where the Table 1 files, figures and viewer of each run are (only files that exist), the report command
    and what the data was."""
    workdir = Path(workdir)
    lines = ["", "Finished. Where to look (paths relative to " + str(workdir.resolve()) + "):"]
    data = data_line(workdir)
    if data:
        lines.append(f"  data      {data}")
    for run in runs:
        table1 = _existing(workdir, *(RESULTS.table(run, "table1_overall", e) for e in ("md", "tsv", "tex")))
        figures = _existing(workdir, *(RESULTS.figure(run, n) for n in PERFORMANCE_FIGURES + EXPLANATION_FIGURES))
        viewer = _existing(workdir, RESULTS.viewer(run))
        if not (table1 or figures or viewer):
            continue
        lines.append(f"  run {run}")
        if table1:
            lines.append(f"    Table 1   {table1[0]}" + (f"  (also {', '.join(table1[1:])})" if table1[1:] else ""))
        if figures:
            lines.append(
                f"    figures   {len(figures)} in {Path(figures[0]).parent}/ (PNG, PDF beside), e.g. {figures[0]}"
            )
        if viewer:
            lines.append(f"    viewer    {viewer[0]}  (open in a browser)")
    for name in user_records:
        lines += [f"  your ECG  {p}" for p in _existing(workdir, RESULTS.user_record(name))]
    lines += [f"  ablation  {p}" for p in _existing(workdir, RESULTS.table(None, "ablation", "md"))]
    options = "".join(f" --configfile {shlex.quote(str(c))}" for c in configfiles)
    options += " --config <the same as this run>" if config_options else ""
    lines.append(f"  report    snakemake --report {REPORT}{options}   (figures and tables with captions, one file)")
    return "\n".join(lines) + "\n"


def _main_log(snakemake_log) -> Path | None:
    """Snakemake hands the handlers its log file, as a path or a list of paths."""
    logs = snakemake_log if isinstance(snakemake_log, (list, tuple)) else [snakemake_log]
    return next((Path(p) for p in logs if p and Path(p).is_file()), None)


def failed_logs(snakemake_log) -> list[str]:
    """Log files of the failed jobs, as Snakemake's own log names them ('log: <path> (check log file(s)...')."""
    main = _main_log(snakemake_log)
    text = main.read_text(errors="replace") if main else ""
    found = re.findall(r"^\s*log: (.+?) \(check log file\(s\) for error details\)", text, flags=re.M)
    return list(dict.fromkeys(p for entry in found for p in entry.split(", ")))


def error_message(snakemake_log, workdir=".", tail: int = 25) -> str:
    """The end of each failed rule's log, and one line on what to try."""
    workdir = Path(workdir)
    lines = ["", "The run failed."]
    for log in failed_logs(snakemake_log):
        path = workdir / log
        if not path.is_file():
            lines.append(f"  {log}: no log written (the job failed before its script started)")
            continue
        body = path.read_text(errors="replace").splitlines()[-tail:]
        lines += [f"--- last {len(body)} lines of {log} ---", *body, "---"]
    if len(lines) == 2:
        lines.append(f"  no rule log named; Snakemake's own log: {_main_log(snakemake_log)}")
    lines.append(
        "What to try: fix the cause the log names (config key, input file, memory), then rerun the same command; "
        "finished steps are kept and only the failed ones run again."
    )
    return "\n".join(lines) + "\n"
