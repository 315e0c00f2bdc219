# Shared values and input functions for the rules.
from ecgxai.config import filter_settings

# Values the schema cannot check (e.g. band-pass below Nyquist) are checked here, at parse time.
try:
    FILTERS = filter_settings(config["preprocess"])
except ValueError as exc:
    raise WorkflowError(f"config preprocess: {exc}")

RATE = FILTERS.rate
DATA = f"results/data/{RATE}hz"


def acquire_inputs(wildcards):
    """A local folder is an input, so changes to its tables rerun preprocessing."""
    if config["data"]["source"] == "local":
        return [os.path.join(config["data"]["path"], "ptbxl_database.csv")]
    return []


def all_outputs():
    return [DATA, "results/data/labels.parquet", "results/data/quality.tsv"]
