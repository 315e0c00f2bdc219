# ECG explainability workflow: PTB-XL -> Parquet -> hybrid CNN-BiLSTM-attention -> SHAP/LIME.
# The DAG lives in rules/*.smk, the logic in the `ptbxl_xai` package, the glue in workflow_scripts/.
import os
import sys

import yaml

from snakemake.utils import min_version, validate

min_version("9.0")


# The defaults beside this Snakefile; `--configfile`/`--config` are merged over them.
configfile: os.path.join(workflow.basedir, "config.yaml")


# A typo or a bad value fails here, naming the key, before any job runs.
SCHEMA = "ptbxl_xai/resources/config.schema.yaml"
sys.path.insert(0, workflow.basedir)  # the package, for parse-time config handling
from ptbxl_xai.config import coerce_types

with open(os.path.join(workflow.basedir, SCHEMA)) as f:
    coerce_types(config, yaml.safe_load(f))  # nested --config values arrive as strings
validate(config, schema=SCHEMA, set_default=True)

# Scripts import the package from this checkout, also inside per-rule conda environments.
# (set, not required: the envvars directive is for variables a user must provide)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p))


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/acquire.smk"
include: "rules/preprocess.smk"
include: "rules/delineate.smk"
include: "rules/train.smk"
include: "rules/crossval.smk"
include: "rules/explain.smk"
include: "rules/render.smk"
include: "rules/checks.smk"
include: "rules/known_answer.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
        checks_outputs(),


# What the terminal says at the end: where to look, or which log explains the failure (ptbxl_xai.run_summary).
from ptbxl_xai.run_summary import error_message, success_message


onsuccess:
    print(
        success_message(
            ".",
            RUNS,
            USER_RECORDS,
            workflow.overwrite_configfiles,
            config_options=bool(workflow.config_settings.config),
        )
    )


onerror:
    print(error_message(log))
