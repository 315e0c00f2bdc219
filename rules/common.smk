import re
from pathlib import Path

from ptbxl_xai.layout import RESULTS  # every path under results/ (ptbxl_xai/layout.py)

# Shared values and input functions for the rules.
from ptbxl_xai.config import FOLDS, NORMALIZATIONS, SPLITS, cv_splits, filter_settings, run_config, run_scheme
from ptbxl_xai.config import known_answer_variant, variant_config
from ptbxl_xai.config import (
    EXPLANATION_FIGURES,
    EXPLANATION_TABLES,
    PERFORMANCE_FIGURES,
    PERFORMANCE_TABLES,
)

# Values the schema cannot check (e.g. band-pass below Nyquist) are checked here, at parse time.
try:
    FILTERS = filter_settings(config["preprocess"])
except ValueError as exc:
    raise WorkflowError(f"config preprocess: {exc}")

# A command whose data config differs from the one results/ was built from stops here, before
# Snakemake sees changed acquire params and deletes what was built (issue 12).
from ptbxl_xai.config import check_data_config, data_identity

try:
    check_data_config(config["data"])
except ValueError as exc:
    raise WorkflowError(f"config data: {exc}")

RATE = FILTERS.rate
DATA = RESULTS.data(RATE)
DELINEATION = RESULTS.delineation(RATE)


# The ablation grid's runs (abl-<variant>-s<seed>) join the configured ones; they are built only
# by the `ablation` target, not by default.
from ptbxl_xai.config import expand_runs

try:
    ABLATION_RUNS = expand_runs(config["ablation"])
except ValueError as exc:
    raise WorkflowError(f"config ablation: {exc}")
_clash = sorted(set(ABLATION_RUNS) & set(config["runs"]))
if _clash:
    raise WorkflowError(f"config runs {_clash} clash with ablation run names; rename them")
RUNS = list(config["runs"])
config["runs"].update(ABLATION_RUNS)

EXPLAIN_RUNS = config["explain"].get("runs", RUNS)
_unknown = sorted(set(EXPLAIN_RUNS) - set(RUNS))
if _unknown:
    raise WorkflowError(f"config explain.runs names undefined runs {_unknown}; defined: {RUNS}")


wildcard_constraints:
    run="|".join(re.escape(r) for r in config["runs"]),
    split="val|test",
    fold="|".join(str(f) for f in FOLDS),


USER_RECORDS = config["explain_record"]["records"]
if USER_RECORDS and config["explain_record"]["run"] not in RUNS:
    raise WorkflowError(f"config explain_record.run {config['explain_record']['run']!r} is not a defined run: {RUNS}")


def user_record_header(wildcards):
    """The header of a user's record: its path comes from config explain_record.records."""
    if wildcards.name not in USER_RECORDS:
        raise WorkflowError(f"no record named {wildcards.name!r} under explain_record.records in the config")
    path = USER_RECORDS[wildcards.name]
    return path if path.endswith(".hea") else f"{path}.hea"


from ptbxl_xai.config import data_path, run_normalize

for _run in config["runs"]:  # a run asking for a normalisation without z-scoring fails here, naming it
    try:
        data_path(config, _run)
    except ValueError as exc:
        raise WorkflowError(f"config runs: {exc}")


def run_data(wildcards):
    """The data folder a run trains and predicts on: DATA, or its records renormalised (rule renormalize)."""
    return data_path(config, wildcards.run)


def crossval(run):
    return run_scheme(config, run) == "crossval"


def test_predictions(wildcards):
    """The predictions a run is scored on: fold 10 (holdout) or the pooled out-of-fold ones (crossval)."""
    return RESULTS.scored_predictions(wildcards.run, crossval(wildcards.run))


def run_thresholds(wildcards):
    """Validation-tuned thresholds: the holdout model's, or every fold model's (crossval)."""
    return RESULTS.thresholds(wildcards.run, crossval(wildcards.run))


def run_history(wildcards):
    """Training history shown in the report: the holdout model's, or the fold-10 model's (crossval)."""
    return RESULTS.history(wildcards.run, crossval(wildcards.run))


def ablation_files(kind):
    """One file per ablation run (ABLATION_RUNS order): its scored predictions, thresholds, model, history."""
    from types import SimpleNamespace

    pick = {
        "predictions": test_predictions,
        "thresholds": run_thresholds,
        "history": run_history,
        "model": lambda wc: run_history(wc).replace("history.tsv", "model.pt"),
    }[kind]
    return [pick(SimpleNamespace(run=r)) for r in ABLATION_RUNS]


def user_record_data(wildcards):
    """The data file(s) a user's header names, so a changed signal reruns explain_record; none
    where the header is missing or malformed (the job then fails naming it)."""
    from ptbxl_xai.data.wfdb_io import RecordError, read_header

    header = user_record_header(wildcards)
    try:
        names = sorted(set(read_header(Path(header)).file_name))
    except (RecordError, OSError):
        return []
    return [os.path.join(os.path.dirname(header), name) for name in names]


def acquire_inputs(wildcards):
    """A local folder is an input, so changes to its tables rerun preprocessing."""
    if config["data"]["source"] == "local":
        return [os.path.join(config["data"]["path"], "ptbxl_database.csv")]
    return []


from types import SimpleNamespace as Namespace

# Wave features and the normal_template background need the delineation (rule delineate, DELINEATION);
# without it every record is explained on time bins, and the outputs say so.
# Every stage gets only the settings it reads, so that an edited setting reruns what it changes
# (rerun-triggers include params; tests/test_reruns.py). Which records are explained is explain's alone.
EXPLAIN_PARAMS = {k: v for k, v in config["explain"].items() if k not in ("runs", "n_boot", "backgrounds")}
SELECTION_KEYS = ("records", "strategy")  # which test records the explain stage picks
RECORD_EXPLAIN_PARAMS = {k: v for k, v in EXPLAIN_PARAMS.items() if k not in SELECTION_KEYS}
# what the checks stages read of `explain`: the explainers' settings, so they explain as the explain stage does
# Threads of the explaining rules (explain, explain_backgrounds, the checks): their model calls are batches
# of 64 records, where a second torch thread adds little (0.79 -> 0.54 ms per record on 2 cores), while
# they are independent jobs after training: on 2 cores two 1-thread jobs side by side do ~35% more.
EXPLAIN_THREADS = max(1, min(4, workflow.cores // 4))
CHECKS_EXPLAIN_PARAMS = {k: config["explain"][k] for k in ("shap", "lime", "seed", "blur_sigma_s", "background")}
CHECKS_PARAMS = {k: v for k, v in config["checks"].items() if k not in ("expert_rules", "sanity", "seed_runs")}


def has_delineation():
    try:
        rules.delineate
    except (AttributeError, WorkflowError):  # snakemake raises WorkflowError for an unknown rule
        return False
    return True


def beats_input(wildcards):
    """The beat tables, when the workflow delineates and wave features are wanted."""
    cfg = config["explain"]
    wanted = cfg["features"] == "waves" or cfg["compare_features"] or cfg["background"] == "normal_template"
    return {"beats": DELINEATION} if wanted and has_delineation() else {}


def template_input(wildcards):
    """The NORM template, when a background that uses it is asked for."""
    cfg = config["explain"]
    used = cfg["background"] == "normal_template" or "normal_template" in cfg["backgrounds"]["compare"]
    if used and not has_delineation():
        if cfg["background"] == "normal_template":
            raise WorkflowError(
                "explain.background normal_template needs delineated NORM training records (rule delineate)"
            )
        return {}
    return {"template": RESULTS.template(wildcards.run)} if used else {}


def all_outputs():
    HOLDOUT_RUNS = [r for r in RUNS if not crossval(r)]
    """What `snakemake` builds by default: every stage for every run in the config."""
    return (
        [DATA, RESULTS.labels(), RESULTS.quality(), DELINEATION]
        + [RESULTS.figure(None, "delineation_examples")]
        + [RESULTS.metrics(r, t) for r in RUNS for t in ("overall", "per_label", "comparison")]
        + [RESULTS.predictions(r, split) for r in HOLDOUT_RUNS for split in ("val", "test")]
        + [RESULTS.predictions(r, "crossval") for r in RUNS if crossval(r)]
        + [RESULTS.figure(r, name) for r in RUNS for name in PERFORMANCE_FIGURES]
        + [RESULTS.table(r, name) for r in RUNS for name in PERFORMANCE_TABLES]
        + [RESULTS.explain(r, f) for r in EXPLAIN_RUNS for f in ("correlation.tsv", "faithfulness.tsv")]
        + [RESULTS.figure(r, name) for r in EXPLAIN_RUNS for name in EXPLANATION_FIGURES]
        + [RESULTS.table(r, name) for r in EXPLAIN_RUNS for name in EXPLANATION_TABLES]
        + [RESULTS.viewer(r) for r in EXPLAIN_RUNS]
        + [RESULTS.user_record(name) for name in USER_RECORDS]
    )


def rendered(names, category, figures=True):
    """Named outputs for figures (PNG in the report, PDF beside it) or tables (TSV in the report)."""
    path = RESULTS.figure if figures else RESULTS.table
    main, others = ("png", ["pdf"]) if figures else ("tsv", ["md", "tex"])
    out = {}
    for name in names:
        out[name] = report(
            path("{run}", name, main), caption=f"../report/{name}.rst", category=category, subcategory="{run}"
        )
        for ext in others:
            out[f"{name}_{ext}"] = path("{run}", name, ext)
    return out


# Checks of the explanations (rules/checks.smk): constants and input functions.
SEED_RUNS = config["checks"]["seed_runs"]
_unknown_seed_runs = sorted(set(SEED_RUNS) - set(config["runs"]))
if _unknown_seed_runs:
    raise WorkflowError(f"config checks.seed_runs names undefined runs {_unknown_seed_runs}")
if len(SEED_RUNS) == 1:
    raise WorkflowError("config checks.seed_runs needs at least two runs (one per training seed), or none")
if len({run_normalize(config, r) for r in SEED_RUNS}) > 1:  # one input space, or seeds are not all that differs
    raise WorkflowError(f"config checks.seed_runs {SEED_RUNS} must share one normalize")


def checks_outputs():
    """The check files `snakemake` builds by default for the explained runs."""
    out = []
    if config["checks"]["expert_rules"]:
        out += [
            RESULTS.checks(r, f)
            for r in EXPLAIN_RUNS
            for f in ("expert_rule_alignment.tsv", "rule_deletion_probe.tsv", "background_check.tsv")
        ]
    if config["checks"]["sanity"]:
        out += [RESULTS.checks(r, "method_flags.tsv") for r in EXPLAIN_RUNS]
    if SEED_RUNS:
        out.append(RESULTS.seed_consistency("summary.tsv"))
    if config["counterfactuals"]["enabled"]:
        out += [RESULTS.checks(r, "counterfactuals.tsv") for r in EXPLAIN_RUNS]
    return out


def checks_delineation(wildcards):
    """The beat tables where the workflow delineates; without them every record is on time bins."""
    try:
        rules.delineate
    except (AttributeError, WorkflowError):
        return {}
    return {"beats": rules.delineate.output.beats}


def checks_template(wildcards, run=None):
    """The run's NORM template where a compared background needs it and the workflow can build it."""
    if "normal_template" not in config["checks"]["backgrounds"]:
        return {}
    try:
        rules.normal_template
    except (AttributeError, WorkflowError):
        return {}
    if not checks_delineation(wildcards):
        return {}
    return {"template": RESULTS.template(run or wildcards.run)}


# the scores read everything but the viewer's share; the viewer's answers only how to search and how many
COUNTERFACTUAL_PARAMS = {k: v for k, v in config["counterfactuals"].items() if k not in ("enabled", "viewer_records")}
COUNTERFACTUAL_SEARCH_PARAMS = {
    k: config["counterfactuals"][k]
    for k in ("candidates", "max_features", "max_calls", "lead_groups", "edits", "viewer_records")
}
# what counterfactuals read of `explain`: the feature space, the normal version where no template exists, the seed
COUNTERFACTUAL_EXPLAIN_PARAMS = {k: config["explain"][k] for k in ("features", "background", "blur_sigma_s", "seed")}


def counterfactual_template(wildcards):
    """The run's NORM template (the normal version of every segment) wherever the workflow delineates."""
    if not checks_delineation(wildcards):
        return {}
    return {"template": RESULTS.template(wildcards.run)}


def checks_report(path, name, figure=False):
    return report(
        path,
        caption=f"../report/{name}.rst",
        category="Explanation checks",
        subcategory="{run}",
    )
