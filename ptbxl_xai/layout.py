"""Where everything lives under `results/`: the one place that spells a result path.

The Snakefile's input functions and target lists, the live app, `explain_record` and the closing
messages ask a `Layout` for paths; none spells one itself, so a moved file is moved here once.
Every method takes plain names or Snakemake wildcards: `RESULTS.weights("{run}")` is the
pattern `results/models/{run}/model.pt` a rule declares, `RESULTS.weights("baseline")` one run's file.
Standard library only: the Snakefile's handlers import it in the Snakemake process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PREDICTION_SPLITS = ("val", "test", "crossval")


@dataclass(frozen=True)
class Layout:
    """The paths of one results folder (default `results`, relative to the working directory)."""

    root: str = "results"

    def _p(self, *parts) -> str:
        return "/".join([self.root.rstrip("/"), *(str(p) for p in parts)])

    # ---- data ---------------------------------------------------------------------------------
    def data(self, rate, normalize: str | None = None) -> str:
        """Preprocessed records (`preprocess`), or a renormalised copy of them (`renormalize`)."""
        return self._p("data", f"{rate}hz" + (f"-{normalize}" if normalize else ""))

    def labels(self) -> str:
        return self._p("data", "labels.parquet")

    def quality(self) -> str:
        """Quarantined records with the reason."""
        return self._p("data", "quality.tsv")

    def source_manifest(self) -> str:
        return self._p("data", "source.json")

    def delineation(self, rate) -> str:
        return self._p("delineation", f"{rate}hz")

    # ---- a trained run ------------------------------------------------------------------------
    def model_dir(self, run, crossval: bool = False) -> str:
        return self._p("models", run, *(["cv"] if crossval else []))

    def weights(self, run) -> str:
        return self._p("models", run, "model.pt")

    def sidecar(self, run) -> str:
        return self._p("models", run, "model.json")

    def thresholds(self, run, crossval: bool = False) -> str:
        """Validation-tuned thresholds: the holdout model's, or every fold model's (crossval)."""
        return self.model_dir(run, crossval) + "/thresholds.json"

    def run_config(self, run) -> str:
        """The run's resolved settings (`model`, `train`, ...) as its training used them."""
        return self._p("models", run, "run_config.yaml")

    def fold_model(self, run, fold, file: str) -> str:
        """A file of cross-validation fold model `fold`, e.g. `model.pt`, `thresholds.json` (rule train_cv)."""
        return self._p("models", run, "cv", f"fold{fold}", file)

    def history(self, run, crossval: bool = False) -> str:
        """Training history: the holdout model's, or the fold-10 model's (crossval)."""
        return self._p("models", run, *(["cv", "fold10"] if crossval else []), "history.tsv")

    def predictions(self, run, split: str) -> str:
        """Predictions on `val`, `test` (fold 10) or `crossval` (pooled out-of-fold)."""
        if split not in PREDICTION_SPLITS and not split.startswith("{"):
            raise ValueError(f"split must be one of {PREDICTION_SPLITS}, not {split!r}")
        return self._p("predictions", run, f"{split}.parquet")

    def fold_predictions(self, run, fold, split: str) -> str:
        """Fold model `fold`'s predictions on its `val` or `test` fold (rule predict_cv)."""
        if split not in ("val", "test") and not split.startswith("{"):
            raise ValueError(f"split must be val or test, not {split!r}")
        return self._p("predictions", run, "cv", f"fold{fold}_{split}.parquet")

    def scored_predictions(self, run, crossval: bool = False) -> str:
        """The predictions a run is scored on: fold 10 (holdout) or the pooled out-of-fold ones (crossval)."""
        return self.predictions(run, "crossval" if crossval else "test")

    def metrics(self, run, name: str) -> str:
        """`overall`, `per_label`, `comparison`, ... (TSV) of the evaluate rule; `context` is JSON."""
        return self._p("metrics", run, f"{name}.json" if name == "context" else f"{name}.tsv")

    # ---- explanations and checks --------------------------------------------------------------
    def explain_dir(self, run) -> str:
        return self._p("explain", run)

    def explain(self, run, file: str) -> str:
        """A file of the explain stages of a run, e.g. `shap.parquet`, `correlation.tsv`."""
        return self._p("explain", run, file)

    def template(self, run) -> str:
        """The NORM template of the normal_template background."""
        return self.explain(run, "template.npz")

    def checks(self, run, file: str) -> str:
        return self._p("explain", run, "checks", file)

    def seed_consistency(self, file: str) -> str:
        return self._p("explain", "seed_consistency", file)

    def known_answer(self, file: str) -> str:
        """A file of the known-answer benchmark (planted causes), e.g. `planted.npz`, `localisation.tsv`."""
        return self._p("known_answer", file)

    def known_answer_model(self, architecture, file: str = "model.pt") -> str:
        """A model of the known-answer benchmark: `model.pt` (sidecar beside it) or `history.tsv`."""
        return self._p("known_answer", "models", architecture, file)

    # ---- what a person opens ------------------------------------------------------------------
    def figure(self, run, name: str, ext: str = "png") -> str:
        """A run's figure; run None: a figure of the whole workflow (e.g. delineation_examples)."""
        return self._p("figures", *([run] if run else []), f"{name}.{ext}")

    def table(self, run, name: str, ext: str = "tsv") -> str:
        """A run's table; run None: a table across runs (e.g. ablation)."""
        return self._p("tables", *([run] if run else []), f"{name}.{ext}")

    def viewer(self, run) -> str:
        return self._p("viewer", run, "index.html")

    def user_record(self, name, file: str = "index.html") -> str:
        """An explain_record output: `index.html`, `predictions.tsv`, `attributions.parquet`."""
        return self._p("explain_record", name, file)

    def report(self) -> str:
        return self._p("report.html")

    # ---- bookkeeping --------------------------------------------------------------------------
    def log(self, rule: str, stem: str | None = None) -> str:
        return self._p("logs", rule, f"{stem}.log") if stem else self._p("logs", f"{rule}.log")

    def benchmark(self, rule: str, stem: str | None = None) -> str:
        return self._p("benchmarks", rule, f"{stem}.tsv") if stem else self._p("benchmarks", f"{rule}.tsv")

    def trained_runs(self) -> list[str]:
        """Names of the runs with a trained model in this folder."""
        return sorted(p.parent.name for p in Path(self.root, "models").glob("*/model.pt"))


RESULTS = Layout()
