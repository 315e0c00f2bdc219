"""The check stages of a trained run: expert-rule agreement (rule expert_rules), the randomisation sanity
check (sanity) and seed consistency (seed_consistency).

Each stage reads the run's model, test predictions and test signals, builds every record's feature
space from the delineation (waves; a record without beats gets time bins and is skipped by the rule
checks, with the reason), and calls the checks of `ptbxl_xai.explain.checks`. Settings come from the config's
`checks` section plus the explainers' settings of `explain` (shap, lime, seed), so the checks explain
exactly as the explain stage does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ptbxl_xai.evaluation.predictions import read_predictions
from ptbxl_xai.explain.checks.config import METHODS, CheckConfig
from ptbxl_xai.explain.checks.expert_rule_check import expert_rule_check
from ptbxl_xai.explain.checks.randomisation import randomisation_check
from ptbxl_xai.explain.checks.rules import load_rules, rules_for_labels, rules_table
from ptbxl_xai.explain.checks.seeds import seed_consistency as seed_consistency_check
from ptbxl_xai.explain.spaces.features import space_for_record
from ptbxl_xai.model.checkpoint import load_checkpoint
from ptbxl_xai.outputs import write_tsv
from ptbxl_xai.report.plots.checks import expert_rule_alignment, randomisation_cascade, rule_deletion_probe
from ptbxl_xai.stages import stem_of
from ptbxl_xai.trained_run import TrainedRun

log = logging.getLogger(__name__)

TEMPLATE_BACKGROUND = "normal_template"


def check_config(checks: dict, explain: dict, backgrounds=None) -> CheckConfig:
    """CheckConfig from the config's `checks` and `explain` sections (explainers' settings shared)."""
    shap = {k: v for k, v in explain.get("shap", {}).items()}
    return CheckConfig(
        records_per_label=int(checks.get("records_per_label", 20)),
        backgrounds=tuple(backgrounds if backgrounds is not None else checks.get("backgrounds", ["zero"])),
        methods=tuple(checks.get("methods", METHODS)),
        n_random_regions=int(checks.get("n_random_regions", 5)),
        sanity_records=int(checks.get("sanity_records", 10)),
        max_rank_correlation=float(checks.get("max_rank_correlation", 0.5)),
        seed=int(explain.get("seed", 0)),
        n_boot=int(checks.get("n_boot", 2000)),
        shap={k: v for k, v in shap.items() if k != "gradient"},
        lime=dict(explain.get("lime", {})),
    )


def _beats(beats_dir, ecg_ids) -> dict:
    if not beats_dir:
        return {}
    from ptbxl_xai.data.delineation import read_beats  # the delineation stage's reader

    table = read_beats(beats_dir, ecg_ids=[int(e) for e in ecg_ids])
    return {int(e): g.reset_index(drop=True) for e, g in table.groupby("ecg_id", sort=False)}


def _templates(template, kinds) -> tuple[dict, list[str]]:
    """{normal_template: x, space -> background} when asked for and available; the kinds that remain."""
    kinds = list(kinds)
    if TEMPLATE_BACKGROUND not in kinds:
        return {}, kinds
    if template is None:
        rest = [k for k in kinds if k != TEMPLATE_BACKGROUND] or ["zero"]
        log.warning("background %s left out: no normal template (needs delineation); using %s", TEMPLATE_BACKGROUND,
                    rest)  # fmt: skip
        return {}, rest
    from ptbxl_xai.explain.spaces.template import NormalTemplate, normal_template_background  # the explain stage's

    tpl = NormalTemplate.load(template) if isinstance(template, (str, Path)) else template
    return {TEMPLATE_BACKGROUND: lambda x, space: normal_template_background(x, space, tpl)}, kinds


def load_run(weights, predictions, thresholds, data_dir, explain: dict, beats_dir=None) -> dict:
    """The run (`TrainedRun`), its test signals in prediction order with labels, feature spaces and references."""
    trained = TrainedRun(weights, thresholds, data_dir)
    pred = read_predictions(predictions)
    x, ids = trained.test_signals(pred["ecg_id"])
    ids = [int(e) for e in ids]
    beats = _beats(beats_dir, ids)
    spaces = [space_for_record("waves", x.shape[-1], trained.n_bins, beats.get(e)) for e in ids]
    shap = explain.get("shap", {})
    return dict(
        trained=trained,
        model=trained.model,
        x=x,
        ids=ids,
        y_true=np.asarray(pred["y_true"]),
        prob=np.asarray(pred["prob"]),
        names=trained.label_names,
        thresholds=trained.thresholds,
        spaces=spaces,
        rate=trained.rate,
        lead_means=trained.lead_means,
        gradient_background=trained.gradient_background(shap.get("gradient_background", 32), explain.get("seed", 0)),
        n_delineated=sum(s.kind == "waves" for s in spaces),
    )


def explained_maps(shap, lime, explain: dict):
    """The explain stage's SHAP and LIME rows (its Parquet files) for the checks to reuse, or None where the
    rule was not given them."""
    if not shap or not lime:
        return None
    from ptbxl_xai.explain.methods.explain_records import Explained

    columns = ["ecg_id", "label", "method", "feature_space", "value"]
    frames = [pd.read_parquet(p, columns=columns) for p in (shap, lime)]
    rows = pd.concat(frames, ignore_index=True)
    return Explained(rows[rows["method"].isin(["shap", "lime"])], explain["background"])


def _context(run: dict, what: str) -> str:
    return (
        f"{what}, test fold ({len(run['ids'])} records, {run['n_delineated']} delineated), {len(run['names'])} labels"
    )


def expert_rules(
    *,
    weights,
    thresholds,
    predictions,
    data,
    shares,
    alignment,
    probe,
    probe_records,
    background,
    background_records,
    skipped,
    rules,
    alignment_figure,
    probe_figure,
    explain: dict,
    checks: dict,
    beats=None,
    template=None,
    alignment_figure_pdf=None,
    probe_figure_pdf=None,
    explained_shap=None,
    explained_lime=None,
) -> dict[str, pd.DataFrame]:
    """Alignment with the expert rules, the deletion probe and the background check for one run, written: the
    per-record shares (Parquet), the summary and per-record TSVs, the rules used (`rules`) and the alignment and
    probe figures (PNG, with the PDF beside: `*_figure_pdf`). `explained_shap`/`explained_lime`: the explain
    stage's files, whose maps of the same records are reused. Returns the tables, with the figures' `context`."""
    run = load_run(weights, predictions, thresholds, data, explain, beats)
    templates, kinds = _templates(template, checks.get("backgrounds", ["zero"]))
    cfg = check_config(checks, explain, kinds)
    explained = explained_maps(explained_shap, explained_lime, explain)
    cited = rules_for_labels(run["names"], load_rules())
    log.info(
        "expert rules for %d of %d labels (%s); up to %d positives each; backgrounds %s; %d of %d test records delineated",
        len(cited),
        len(run["names"]),
        ",".join(cited),
        cfg.records_per_label,
        list(cfg.backgrounds),
        run["n_delineated"],
        len(run["ids"]),
    )
    out = expert_rule_check(
        run["model"],
        run["x"],
        run["ids"],
        run["y_true"],
        run["names"],
        run["spaces"],
        cited,
        cfg,
        thresholds=run["thresholds"],
        lead_means=run["lead_means"],
        blur_sigma_s=explain["blur_sigma_s"],
        rate=run["rate"],
        gradient_background=run["gradient_background"],
        templates=templates,
        explained=explained,
    )
    if explained is not None:
        log.info("reused %d (record, method) maps of the explain stage (background %s)", explained.reused,
                 explained.background)  # fmt: skip
    table = rules_table(cited)
    positives = run["y_true"].sum(0)
    table.insert(1, "test_positives", [int(positives[run["names"].index(lab)]) for lab in table["label"]])
    out["rules"] = table
    out["context"] = _context(run, "positives of each label")

    out["shares"].to_parquet(shares, index=False)
    paths = dict(alignment=alignment, probe=probe, probe_records=probe_records, background=background,
                 background_records=background_records, skipped=skipped, rules=rules)  # fmt: skip
    for key, path in paths.items():
        write_tsv(out[key], path)
    expert_rule_alignment(out["alignment"], stem_of(alignment_figure, pdf=alignment_figure_pdf), out["context"])
    rule_deletion_probe(out["probe"], stem_of(probe_figure, pdf=probe_figure_pdf), out["context"])
    return out


def _sanity_records(run: dict, count: int, seed: int) -> tuple[np.ndarray, list[list[int]]]:
    """A seeded sample of delineated test records, each with its most probable label."""
    waves = np.flatnonzero([s.kind == "waves" for s in run["spaces"]])
    pool = waves if len(waves) else np.arange(len(run["ids"]))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False))
    return rows, [[int(np.argmax(run["prob"][r]))] for r in rows]


def sanity(
    *,
    weights,
    thresholds,
    predictions,
    data,
    records,
    summary,
    flags,
    figure,
    explain: dict,
    checks: dict,
    beats=None,
    template=None,
    figure_pdf=None,
) -> dict[str, pd.DataFrame]:
    """Cascading model-parameter randomisation on `checks.sanity_records` test records, written: per-record
    rows, the summary, each method's flag and the cascade figure (PNG, with the PDF `figure_pdf` beside).
    Returns the tables, with the figure's `context`."""
    run = load_run(weights, predictions, thresholds, data, explain, beats)
    templates, kinds = _templates(template, checks.get("backgrounds", ["zero"]))
    cfg = check_config(checks, explain, kinds)
    rows, labels = _sanity_records(run, cfg.sanity_records, cfg.seed)
    log.info("randomisation cascade on %d test records (their top label), background %s", len(rows), kinds[:1])
    out = randomisation_check(
        run["model"],
        run["x"][rows],
        [run["ids"][r] for r in rows],
        labels,
        run["names"],
        [run["spaces"][r] for r in rows],
        cfg,
        lead_means=run["lead_means"],
        blur_sigma_s=explain["blur_sigma_s"],
        rate=run["rate"],
        gradient_background=run["gradient_background"],
        templates=templates,
    )
    n_waves = sum(run["spaces"][r].kind == "waves" for r in rows)
    out["context"] = f"{len(rows)} test records ({n_waves} on wave features), top label each"
    write_tsv(out["records"], records)
    write_tsv(out["summary"], summary)
    write_tsv(out["flags"], flags)
    randomisation_cascade(out["summary"], stem_of(figure, pdf=figure_pdf), out["context"])
    return out


def seed_consistency(
    *,
    weights,
    thresholds,
    predictions,
    data,
    records,
    summary,
    runs,
    explain: dict,
    checks: dict,
    beats=None,
    template=None,
) -> dict[str, pd.DataFrame]:
    """Runs trained with different seeds (`runs`, their `weights` in the same order) explaining the same test
    records; the per-record rows and the summary written. Returns them.

    Records and labels come from the first run's predictions and thresholds (`predictions`, `thresholds`: the
    first run's file, or a list whose first entry it is, as the rule passes them).
    """
    runs = list(runs)
    weights = [weights] if isinstance(weights, (str, Path)) else list(weights)
    if len(weights) != len(runs):
        raise ValueError(f"{len(runs)} runs {runs} but {len(weights)} weights")
    predictions, thresholds = _first(predictions), _first(thresholds)
    run = load_run(weights[0], predictions, thresholds, data, explain, beats)
    loaded = {r: load_checkpoint(w) for r, w in zip(runs, weights)}
    models = {r: model.eval() for r, (model, _) in loaded.items()}
    names = {r: meta["label_names"] for r, (_, meta) in loaded.items()}
    for r in runs[1:]:
        if names[r] != names[runs[0]]:
            raise ValueError(
                f"runs {runs[0]} and {r} predict different labels; seed consistency needs the same label set"
            )
    templates, kinds = _templates(template, checks.get("backgrounds", ["zero"]))
    cfg = check_config(checks, explain, kinds)
    rows, labels = _sanity_records(run, cfg.sanity_records, cfg.seed)
    log.info("seed consistency of %s on %d test records", runs, len(rows))
    out = seed_consistency_check(
        models,
        run["x"][rows],
        [run["ids"][r] for r in rows],
        labels,
        run["names"],
        [run["spaces"][r] for r in rows],
        cfg,
        lead_means=run["lead_means"],
        blur_sigma_s=explain["blur_sigma_s"],
        rate=run["rate"],
        gradient_background=run["gradient_background"],
        templates=templates,
    )
    write_tsv(out["records"], records)
    write_tsv(out["summary"], summary)
    return out


def _first(paths):
    """The one path of a rule's input that lists a path (expand of one run) or is one."""
    return paths if isinstance(paths, (str, Path)) else list(paths)[0]
