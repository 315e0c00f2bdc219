"""The counterfactual stage of an explained run (rule counterfactuals): what would make each checked positive
normal, for the trained model and its randomised control, scored per label.

Records: for every label but NORM, up to `records_per_label` test positives that the trained model calls
positive (a seeded sample). Both counterfactual kinds come from `TrainedRun.counterfactuals`, the entry point
the app and the viewer share; the scores and the control are `explain.checks.counterfactuals`.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from ptbxl_xai.evaluation.predictions import read_predictions
from ptbxl_xai.explain.checks.counterfactuals import matched_thresholds, paired_drop_thresholds, summarize
from ptbxl_xai.explain.counterfactual import search_options
from ptbxl_xai.outputs import write_text, write_tsv
from ptbxl_xai.report.plots.counterfactuals import counterfactual_examples
from ptbxl_xai.stages import stem_of
from ptbxl_xai.stages.explain import read_beats_by_record
from ptbxl_xai.trained_run import NORMAL_LABELS, TrainedRun

log = logging.getLogger(__name__)


def select_tasks(y_true, prob, thresholds, names, per_label: int, seed: int) -> list[tuple[int, str]]:
    """(record index, label) of up to `per_label` true positives the model calls, per label but NORM (seeded)."""
    rng = np.random.default_rng(seed)
    tasks = []
    for c, name in enumerate(names):
        if name in NORMAL_LABELS:  # nothing abnormal to undo
            continue
        hits = np.flatnonzero((np.asarray(y_true)[:, c] > 0) & (np.asarray(prob)[:, c] >= thresholds[c]))
        chosen = np.sort(rng.choice(hits, size=min(per_label, len(hits)), replace=False)) if len(hits) else []
        tasks += [(int(i), name) for i in chosen]
    return tasks


def counterfactual_models(trained: TrainedRun, x_test, prob_test, rows, randomised: bool, seed: int):
    """name -> (predict_proba, thresholds): the trained model and, where asked, its fully randomised copy, which
    must lower each checked record-label's P by the trained model's margin above the threshold (`rows`: the
    test-fold row of each local record index)."""
    from ptbxl_xai.explain.checks.randomisation import randomised_model
    from ptbxl_xai.model.inference import model_functions

    models = {"trained": (model_functions(trained.model)[0], np.asarray(trained.thresholds))}
    if randomised:
        predict = model_functions(randomised_model(trained.model, seed))[0]
        p_rand = predict(x_test)
        matched = matched_thresholds(prob_test, trained.thresholds, p_rand)
        paired = paired_drop_thresholds(prob_test, trained.thresholds, p_rand, matched)
        models["randomised"] = (predict, lambda i, k: paired(rows[i], k))
    return models


def example_signals(trained: TrainedRun, records: pd.DataFrame, x, ids, beats, cfg, n: int) -> list[dict]:
    """The valid segment counterfactuals of the trained model with the fewest features, one per label first
    (up to n): original and counterfactual record, beats, changed features and sentence."""
    from ptbxl_xai.explain.spaces.features import space_for_record

    ok = records[(records["model"] == "trained") & (records["kind"] == "segments") & records["valid"].astype(bool)]
    ok = ok.sort_values(["n_changed", "p_after"])
    picked = pd.concat([ok.drop_duplicates("label"), ok]).drop_duplicates(["ecg_id", "label"]).head(n)
    index = {int(e): i for i, e in enumerate(ids)}
    out = []
    for row in picked.itertuples():
        i = index[int(row.ecg_id)]
        space = space_for_record(cfg["features"], x.shape[-1], trained.n_bins, beats.get(int(row.ecg_id)))
        changed = str(row.changed).split(";")
        out.append(dict(ecg_id=int(row.ecg_id), label=row.label, original=x[i],
                        counterfactual=trained.counterfactual_signal(x[i], space, cfg, changed),
                        beats=beats.get(int(row.ecg_id)), changed=changed, sentence=row.sentence))  # fmt: skip
    return out


def viewer_answers(trained: TrainedRun, selection, x, ids, prob, beats_dir, cfg: dict, n: int, options: dict) -> dict:
    """{ecg_id: {label: answer}} for the first n records the explain stage selected (its selection.tsv), each
    label it explained that the model calls (prob: the test fold's stored probabilities, rows as x; NORM
    aside): what the viewer page shows beside their median beat. A record without delineation gets the
    reason instead."""
    table = pd.read_csv(selection, sep="\t").head(n)
    wanted = [int(e) for e in table["ecg_id"]]
    index = {int(e): i for i, e in enumerate(ids)}
    beat_tables = read_beats_by_record(beats_dir, wanted) if beats_dir else {}
    scale, offset = trained.lead_calibration(wanted)
    column = {name: c for c, name in enumerate(trained.label_names)}
    out: dict = {}
    for j, (ecg_id, labels) in enumerate(zip(wanted, table["explained_labels"].fillna(""))):
        i = index[ecg_id]
        called = [lab for lab in str(labels).split(",") if lab in column and lab not in NORMAL_LABELS
                  and prob[i, column[lab]] >= trained.thresholds[column[lab]]]  # fmt: skip
        for label in called:
            out.setdefault(str(ecg_id), {})[label] = trained.counterfactual_answer(
                x[i], ecg_id, label, cfg, beats=beat_tables.get(ecg_id), lead_scale=scale[j], lead_offset=offset[j],
                options=options, not_delineated="" if beats_dir else "the workflow does not delineate",
            )  # fmt: skip
    return out


def counterfactuals(
    *,
    weights,
    thresholds,
    predictions,
    data,
    records,
    summary,
    figure,
    settings: dict,
    explain: dict,
    delineation_method: str,
    beats=None,
    template=None,
    figure_pdf=None,
) -> dict:
    """Search and score the counterfactuals of one run; write the per record-label rows, the summary per label
    and the example figure (PNG, PDF beside). Returns the tables and the context line."""

    trained = TrainedRun(weights, thresholds, data, template=template)
    pred = read_predictions(predictions)
    x, ids = trained.test_signals(pred["ecg_id"])
    names = trained.label_names
    seed = int(explain.get("seed", 0))
    tasks = select_tasks(pred["y_true"], pred["prob"], trained.thresholds, names, settings["records_per_label"], seed)
    chosen = sorted({i for i, _ in tasks})
    local = {i: j for j, i in enumerate(chosen)}
    xs, sel_ids = x[chosen], [int(ids[i]) for i in chosen]
    beat_tables = read_beats_by_record(beats, sel_ids) if beats else {}
    models = counterfactual_models(trained, x, pred["prob"], chosen, settings["randomised"], seed)
    options = search_options(settings)
    edits = options["edits"]
    log.info(
        "%d record-labels (%d test records) of %d labels; models %s; %d clinical edits per record-label; "
        "normal version: %s", len(tasks), len(chosen), len(set(names) - set(NORMAL_LABELS)), list(models), len(edits),
        "the NORM template" if trained.has_template else explain["background"],
    )  # fmt: skip
    rows = trained.counterfactuals(
        xs,
        [(local[i], label) for i, label in tasks],
        sel_ids,
        explain,
        beats=beat_tables,
        models=models,
        edits=edits,
        delineation_method=delineation_method if settings["plausibility"] else None,
        search=options["search"],
        progress=True,
    )
    table = summarize(rows, settings["n_boot"], seed) if len(rows) else pd.DataFrame()
    n_waves = sum(1 for e in sel_ids if e in beat_tables)
    context = (
        f"test fold, {len(tasks)} record-labels of {len(chosen)} records ({n_waves} delineated), "
        f"{len(names)} labels, run {trained.name}"
    )
    write_tsv(rows, records)
    write_tsv(table, summary)
    examples = (
        example_signals(trained, rows, xs, sel_ids, beat_tables, explain, settings["examples"]) if len(rows) else []
    )
    counterfactual_examples(examples, trained.rate, trained.label_names, stem_of(figure, pdf=figure_pdf), context)
    return {"records": rows, "summary": table, "context": context}


def counterfactual_answers(
    *,
    weights,
    thresholds,
    predictions,
    data,
    selection,
    answers,
    settings: dict,
    explain: dict,
    beats=None,
    template=None,
) -> dict:
    """Rule counterfactual_answers: the viewer's answers for the first `viewer_records` records of the explain
    stage's selection (JSON: ecg_id -> label -> answer), searched as rule counterfactuals searches."""
    trained = TrainedRun(weights, thresholds, data, template=template)
    pred = read_predictions(predictions)
    x, ids = trained.test_signals(pred["ecg_id"])
    shown = viewer_answers(trained, selection, x, ids, np.asarray(pred["prob"]), beats, explain,
                           settings["viewer_records"], search_options(settings))  # fmt: skip
    write_text(answers, json.dumps(shown, allow_nan=False))
    log.info("viewer: counterfactuals of %d record-labels of %d records", sum(map(len, shown.values())), len(shown))
    return shown
