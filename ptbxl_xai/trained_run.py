"""A trained run, loaded once: the one loader that the explain stages, the checks, `explain_record` and the app share.

A run is its weights and sidecar (architecture, label names), its validation-tuned thresholds, the data folder
it was trained on (the conditioning, recorded in the Parquet, and the stored scaler of `train_standard`), the
training reference of the explanations (lead means, gradient-SHAP background records) and the NORM template of
the `normal_template` background. `TrainedRun.explain` explains conditioned records with every method, so a
record gets the same SHAP, LIME and attention from the workflow, the checks and the app.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path

import numpy as np
from pandas import isna as pd_isna

from ptbxl_xai.config import SPLITS, FilterSettings, data_path
from ptbxl_xai.data.normalization import training_scaler
from ptbxl_xai.data.parquet_io import load_parquet_records, part_files, read_metadata
from ptbxl_xai.evaluation.thresholds import read_thresholds
from ptbxl_xai.layout import Layout
from ptbxl_xai.model.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

NORMAL_LABELS = ("NORM",)  # the normal class: counterfactuals undo abnormal calls, never this one
TRAINING_REFERENCE_FOLDS = SPLITS["train"][:1]  # one training fold: a large enough sample for means and references


class TrainedRun:
    """One trained run. Heavy parts (training sample, template) load on first use and are kept."""

    def __init__(self, weights, thresholds, data_dir, *, name: str | None = None, template=None, settings=None):
        """weights: model.pt (its sidecar beside it); thresholds: thresholds.json; data_dir: the preprocessed
        records the run trained on; template: the NORM template (.npz path or object) where one exists;
        settings: the conditioning of new records (FilterSettings), by default the one the data records."""
        self.weights, self.thresholds_path, self.data_dir = Path(weights), Path(thresholds), Path(data_dir)
        self.name = name or self.weights.parent.name
        self.model, self.sidecar = load_checkpoint(self.weights)
        self.model.eval()
        self.label_names: list[str] = list(self.sidecar["label_names"])
        self.thresholds = read_thresholds(self.thresholds_path, self.label_names)
        self.label_set = json.loads(self.thresholds_path.read_text()).get("label_set")
        self.test_parts = part_files(self.data_dir, SPLITS["test"])
        if not self.test_parts:
            raise FileNotFoundError(f"{self.data_dir}: no preprocessed test fold; run snakemake {self.data_dir}")
        self.data_meta = read_metadata(self.test_parts[0])
        self.settings = settings or FilterSettings(**self.data_meta["filters"])
        self.rate, self.n_bins = int(self.settings.rate), int(self.settings.n_bins)
        self.lead_stats = training_scaler(self.data_dir, self.settings)  # train_standard: the stored scaler
        self._template = template

    @classmethod
    def from_results(cls, results, run: str, config: dict) -> TrainedRun:
        """The run `run` of a workflow's results folder, as the workflow's rules built it."""
        layout = Layout(str(results))
        weights, thresholds = Path(layout.weights(run)), Path(layout.thresholds(run))
        if not weights.is_file() or not thresholds.is_file():
            have = layout.trained_runs()
            raise FileNotFoundError(
                f"{layout.model_dir(run)}: no trained run {run!r} (model.pt and thresholds.json); trained runs under "
                f"{layout.root}/models: {have or 'none'}. Train it with: snakemake {weights}"
            )
        template = Path(layout.template(run))
        return cls(
            weights,
            thresholds,
            data_path(config, run, results=str(results)),
            name=run,
            template=template if template.is_file() else None,
        )

    # ---- what the explanations need -----------------------------------------------------------
    @property
    def has_template(self) -> bool:
        """Whether the run has a NORM template, without loading it (a prediction worker never needs it)."""
        return self._template is not None

    @property
    def template(self):
        """The NORM template (`ptbxl_xai.explain.spaces.template.NormalTemplate`), or None where the run has none."""
        if isinstance(self._template, (str, Path)):
            from ptbxl_xai.explain.spaces.template import NormalTemplate

            self._template = NormalTemplate.load(self._template)
        return self._template

    @cached_property
    def training_sample(self) -> np.ndarray:
        """Records of the first training fold [n, leads, T]: the source of lead means and gradient references."""
        return load_parquet_records(self.data_dir, TRAINING_REFERENCE_FOLDS)[0]

    @cached_property
    def lead_means(self) -> np.ndarray:
        """Per-lead mean of the training sample [leads], the `mean` background."""
        return self.training_sample.mean(axis=(0, 2))

    def gradient_background(self, n: int, seed: int) -> np.ndarray:
        """n training records (seeded) as the gradient-SHAP reference."""
        from ptbxl_xai.explain.methods.shap_explainer import sample_background

        return sample_background(self.training_sample, int(n), int(seed))

    def training_reference(self, cfg: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(lead means, gradient-SHAP background) where the explain config `cfg` needs them, else None."""
        if not (cfg["background"] == "mean" or cfg["shap"].get("gradient", False)):
            return None, None
        return self.lead_means, self.gradient_background(cfg["shap"].get("gradient_background", 32), cfg["seed"])

    # ---- records ------------------------------------------------------------------------------
    def test_signals(self, ecg_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """(x [n, leads, T], ecg_ids) of test records, in the order of `ecg_ids` (all by default, sorted)."""
        x, ids, _ = load_parquet_records(self.data_dir, SPLITS["test"])
        if ecg_ids is None:
            return x, ids
        wanted = np.asarray([int(e) for e in ecg_ids], dtype=ids.dtype)
        pos = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
        missing = wanted[ids[pos] != wanted] if len(ids) else wanted
        if len(missing):
            raise ValueError(f"ecg_ids {missing[:5].tolist()} missing from the test signals in {self.data_dir}")
        return x[pos], wanted

    # ---- explanations -------------------------------------------------------------------------
    def explain(
        self,
        x: np.ndarray,
        labels,
        ecg_ids,
        cfg: dict,
        *,
        beats: dict | None = None,
        progress: bool = True,
        should_stop=None,
        paper_bins: bool = False,
    ):
        """Explain conditioned records x [n, 12, T] for their label indices with `cfg` (the explain config):
        SHAP, LIME, attention (and gradient SHAP, faithfulness curves where `cfg` asks), in the configured
        feature space (and the other one with `compare_features`). beats: ecg_id -> beat table for the wave
        space; a record without one is explained on time bins. should_stop: asked before each batch of model
        calls, True stops the explanation (`CallsStopped`). paper_bins: without `compare_features`, a record
        explained on waves also gets SHAP and attention on time bins (no LIME, no faithfulness): what the
        paper's Figures 1-3 show, at a third of the other space's model calls. Returns `Explanations`."""
        from ptbxl_xai.explain.methods.explain_records import explain_records
        from ptbxl_xai.explain.spaces.features import bin_space, record_spaces
        from ptbxl_xai.model.inference import Probabilities, model_functions

        if cfg["background"] == "normal_template" and self.template is None:
            raise ValueError(
                "explain.background normal_template needs the NORM template (rule normal_template, from delineated "
                "NORM training records); choose another background or provide delineation"
            )
        compare = cfg["compare_features"]
        spaces = [
            record_spaces(cfg["features"], x.shape[-1], self.n_bins, None if beats is None else beats.get(e), compare)
            for e in ecg_ids
        ]
        if paper_bins and not compare:
            spaces = [s if s[0].kind == "bins" else [*s, bin_space(x.shape[-1], self.n_bins)] for s in spaces]
        lead_means, grad_bg = self.training_reference(cfg)
        predict_proba, attention = model_functions(self.model, should_stop=should_stop)
        return explain_records(
            predict_proba,
            x,
            labels,
            n_bins=self.n_bins,
            background=cfg["background"],
            shap_cfg=cfg["shap"],
            lime_cfg=cfg["lime"],
            attention_fn=attention,
            step_edges=self.model.step_to_sample_edges(x.shape[-1]),
            seed=cfg["seed"],
            progress=progress,
            ecg_ids=list(ecg_ids),
            label_names=self.label_names,
            lead_means=lead_means,
            blur_sigma_s=cfg["blur_sigma_s"],
            rate=self.rate,
            gradient_model=Probabilities(self.model) if cfg["shap"].get("gradient", False) else None,
            gradient_background=grad_bg,
            faithfulness_cfg=cfg["faithfulness"],
            correlations=False,
            spaces=spaces,
            template=self.template,
            other_space_methods=None if compare else ("shap",),
        )

    def counterfactual_masker(self, xi: np.ndarray, space, cfg: dict):
        """(Masker, background name) of one record's counterfactuals: the NORM template's segments where the run
        has a template and the record is on waves, otherwise cfg's background (blur in place of a missing
        template)."""
        from ptbxl_xai.explain.spaces.masking import Masker

        bg = cfg["background"]
        if self.template is not None and space.kind == "waves":
            bg = "normal_template"
        elif bg == "normal_template":
            bg = "blur"  # the template lives on wave segments; time bins (or no template) take the blurred record
        lead_means = self.lead_means if bg == "mean" else None
        return Masker(xi, space, bg, lead_means, cfg["blur_sigma_s"], self.rate, self.template), bg

    def counterfactual_signal(self, xi: np.ndarray, space, cfg: dict, changed) -> np.ndarray:
        """The record xi [leads, T] with the features `changed` (names such as 'V2:ST') made normal."""
        from ptbxl_xai.explain.counterfactual import made_normal

        return made_normal(self.counterfactual_masker(xi, space, cfg)[0], changed)

    def counterfactual_answer(
        self,
        x,
        ecg_id,
        label: str,
        cfg: dict,
        *,
        beats,
        lead_scale,
        lead_offset,
        options: dict | None = None,
        not_delineated="",
        should_stop=None,
    ) -> dict:
        """One record's counterfactuals for one label, as the app and the viewer show them (JSON-ready): the
        segments made normal and each kind's smallest edit (`counterfactuals`), and the median beats of the
        record and of its segment counterfactual in mV for the overlay. beats: the record's beat table; None
        (not delineated, `not_delineated` saying why) gives `available` false with the reason. options: the
        search caps and edits (`explain.counterfactual.search_options` of the config's `counterfactuals`)."""
        from ptbxl_xai.data.conditioning import to_mv
        from ptbxl_xai.explain.spaces.features import NotDelineated, space_for_record
        from ptbxl_xai.explain.spaces.median_beat import median_beat

        out = {"label": label, "background": "normal_template" if self.has_template else cfg["background"]}
        if label in NORMAL_LABELS:
            return {**out, "available": False, "reason": f"no counterfactual: {label} is the normal class, and this "
                    "search answers what would make an abnormal call normal"}  # fmt: skip
        space = space_for_record("waves", x.shape[-1], self.n_bins, beats)
        if space.kind != "waves":
            why = not_delineated or "; ".join(space.notes) or "the record could not be delineated"
            return {**out, "available": False, "reason": f"no counterfactual: it changes wave segments, and {why}"}
        scale, offset = np.asarray(lead_scale, np.float32), np.asarray(lead_offset, np.float32)
        options = options or {}
        rows = self.counterfactuals(
            x[None], [(0, label)], [int(ecg_id)], {**cfg, "features": "waves"}, beats={int(ecg_id): beats},
            lead_scale=scale[None], lead_offset=offset[None], should_stop=should_stop,
            edits=options.get("edits"), search=options.get("search"),
        )  # fmt: skip
        seg = rows[rows["kind"] == "segments"].iloc[0]
        changed = [f for f in str(seg["changed"]).split(";") if f and seg["valid"]]

        def names(value) -> list[str]:
            return [n for n in str(value).split(";") if n and n != "nan"]

        out.update(
            available=True,
            probability=float(seg["p_before"]),
            threshold=float(seg["threshold"]),
            predicted=bool(seg["status"] != "not predicted"),
            segments={
                "valid": bool(seg["valid"]),
                "status": str(seg["status"]),
                "reason": "" if pd_isna(seg["reason"]) else str(seg["reason"]),
                "p_after": float(seg["p_after"]),
                "changed": changed,
                "n_features": int(space.n_features),
                "others_changed": names(seg["others_changed"]),
                "n_model_calls": int(seg["n_calls"]),
                "sentence": str(seg["sentence"]),
            },
            edits=[
                {
                    "kind": str(r["kind"]),
                    "valid": bool(r["valid"]),
                    "reason": "" if pd_isna(r["reason"]) else str(r["reason"]),
                    "edit": "" if pd_isna(r["edit"]) else str(r["edit"]),
                    "amount": None if pd_isna(r["amount"]) else float(r["amount"]),
                    "unit": str(r["unit"]),
                    "p_after": float(r["p_after"]),
                    "others_changed": names(r["others_changed"]),
                    "sentence": str(r["sentence"]),
                }
                for _, r in rows[rows["kind"] != "segments"].iterrows()
            ],
        )
        if changed:
            x_cf = self.counterfactual_signal(x, space, cfg, changed)
            try:
                before, after = median_beat(x, beats, self.rate), median_beat(x_cf, beats, self.rate)
            except NotDelineated as exc:
                out["overlay_note"] = f"no median beat to draw: {exc}"
            else:
                seg_of = before.segment_of_sample
                out["overlay"] = {
                    "start_s": before.start_s,
                    "units": "mV",
                    "original": np.round(to_mv(before.signal, scale, offset), 4).tolist(),
                    "counterfactual": np.round(to_mv(after.signal, scale, offset), 4).tolist(),
                    "segment_of_sample": None if seg_of is None else seg_of.tolist(),
                    "segment_names": list(space.segment_names),
                    "n_beats": before.n_beats,
                }
        return out

    def lead_calibration(self, ecg_ids) -> tuple[np.ndarray, np.ndarray]:
        """(lead_scale, lead_offset) [n, leads] of test records: mV = signal * scale + offset."""
        from ptbxl_xai.data.parquet_io import lead_calibration

        cal = lead_calibration(self.data_dir, SPLITS["test"], ecg_ids)
        if cal is None:
            raise ValueError(f"{self.data_dir}: the Parquet parts have no lead_scale; rerun preprocess")
        return cal

    def counterfactuals(
        self,
        x: np.ndarray,
        tasks,
        ecg_ids,
        cfg: dict,
        *,
        beats: dict | None = None,
        lead_scale: np.ndarray | None = None,
        lead_offset: np.ndarray | None = None,
        models: dict | None = None,
        edits=None,
        delineation_method: str | None = None,
        search: dict | None = None,
        progress: bool = False,
        should_stop=None,
    ):
        """Counterfactuals of records x [n, 12, T] for tasks [(record index, label name)]: the fewest segments
        made normal (`explain.counterfactual`) and, on delineated records, the smallest ST/T/QRS/PR edit of each
        kind (`explain.clinical_edits`), each scored (`explain.checks.counterfactuals`). cfg: the explain
        config (features, background, blur_sigma_s). beats: ecg_id -> beat table (records without one get time
        bins and no edits). lead_scale/lead_offset [n, leads]: mV per model unit (default: the test fold's
        stored calibration). models: name -> (predict_proba, thresholds), default this run's model.
        edits: `Edit`s tried (default: the clinical grid over the expert-rule lead groups).
        delineation_method: delineates each answer for plausibility (None: not checked). should_stop: as for
        `explain` (the default model only). Returns a tidy DataFrame, one row per (model, ecg_id, label, kind)."""
        from ptbxl_xai.explain.checks.counterfactuals import counterfactual_check
        from ptbxl_xai.explain.checks.rules import load_rules, rules_for_labels
        from ptbxl_xai.explain.counterfactual import search_options
        from ptbxl_xai.explain.spaces.features import space_for_record
        from ptbxl_xai.model.inference import model_functions

        if lead_scale is None or lead_offset is None:
            lead_scale, lead_offset = self.lead_calibration(ecg_ids)
        if models is None:
            models = {"trained": (model_functions(self.model, should_stop=should_stop)[0], self.thresholds)}
        if edits is None:
            edits = search_options(None)["edits"]
        spaces = [
            space_for_record(cfg["features"], x.shape[-1], self.n_bins, None if beats is None else beats.get(int(e)))
            for e in ecg_ids
        ]
        maskers = [self.counterfactual_masker(xi, sp, cfg) for xi, sp in zip(x, spaces)]
        out = counterfactual_check(
            models,
            x,
            ecg_ids,
            list(tasks),
            spaces,
            [m for m, _ in maskers],
            np.asarray(lead_scale),
            np.asarray(lead_offset),
            self.rate,
            self.label_names,
            rules_for_labels(self.label_names, load_rules()),
            edits,
            delineation_method,
            search or {},
            progress=progress,
        )
        if not out.empty:
            index = {int(e): i for i, e in enumerate(ecg_ids)}
            out.insert(2, "space", [spaces[index[e]].kind for e in out["ecg_id"]])
            out.insert(3, "background", [maskers[index[e]][1] for e in out["ecg_id"]])
        return out
