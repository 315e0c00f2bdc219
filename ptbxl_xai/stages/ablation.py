"""The ablation rule: collect the grid's runs, compare each with the reference run (paired), write tables and figure."""

from __future__ import annotations

import json

import pandas as pd

from ptbxl_xai.config import run_name
from ptbxl_xai.evaluation.ablation import collect, paired_against_reference, paired_per_label, summarize
from ptbxl_xai.outputs import write_tsv
from ptbxl_xai.report import tables
from ptbxl_xai.report.ablation import ablation_figure, ablation_table
from ptbxl_xai.report.ablation import per_label_table as label_table
from ptbxl_xai.stages import stem_of


def ablation(
    *,
    ablation: dict,
    runs,
    reference: str,
    evaluate: dict,
    shape,
    metrics,
    contexts,
    models,
    histories,
    predictions,
    thresholds,
    table,
    per_run,
    paired,
    per_label,
    per_label_table,
    figure,
    table_md=None,
    table_tex=None,
    per_label_md=None,
    per_label_tex=None,
    figure_pdf=None,
) -> pd.DataFrame:
    """The ablation stage: per-run table, paired comparisons against `reference` (TSV), summary table
    (`table`: TSV, with `table_md`/`table_tex` beside it), per-label paired ΔAUC (`per_label`: every seed, TSV;
    `per_label_table`: over seeds, TSV/MD/TeX) and figure (`figure`: PNG, `figure_pdf` beside it). `runs` names
    the runs in the order of the path lists (the rule's inputs). Returns the summary.
    """
    runs = list(runs)
    lists = (metrics, contexts, models, histories, predictions, thresholds)
    if any(len(x) != len(runs) for x in lists):
        raise ValueError(f"{len(runs)} runs but path lists of lengths {[len(x) for x in lists]}")
    variant_seed = {run_name(v, s): (v, int(s)) for v in ablation["grid"] for s in ablation["seeds"]}
    unknown = [r for r in runs if r not in variant_seed]
    if unknown:
        raise ValueError(f"runs {unknown} are not in the ablation grid {sorted(variant_seed)}")
    items = [
        {"run": r, "variant": variant_seed[r][0], "seed": variant_seed[r][1], "overall": o, "context": c,
         "model": m, "history": h, "predictions": p, "thresholds": t}
        for r, o, c, m, h, p, t in zip(runs, *lists)
    ]  # fmt: skip
    rows = collect(items, tuple(shape))
    write_tsv(rows, per_run)
    pairs = paired_against_reference(
        items, reference, n_boot=evaluate["n_boot"], seed=evaluate["seed"], ci=evaluate["ci"]
    )
    write_tsv(pairs, paired)
    summary = summarize(rows, pairs)
    with open(contexts[0]) as f:
        note = tables.context_note(json.load(f))
    ablation_table(summary, stem_of(table, md=table_md, tex=table_tex), reference, note)
    labels = paired_per_label(items, reference, n_boot=evaluate["n_boot"], seed=evaluate["seed"], ci=evaluate["ci"])
    write_tsv(labels, per_label)
    label_table(labels, stem_of(per_label_table, md=per_label_md, tex=per_label_tex), reference, note)
    ablation_figure(rows, stem_of(figure, pdf=figure_pdf), pairs, reference)
    return summary
