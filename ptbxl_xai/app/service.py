"""One trained run, loaded once, answering predict and explain requests for single records.

A record comes from an upload (through `ptbxl_xai.data.user_record.prepare_user_record_scaled`, the
`explain_record` rule's preprocessing) or from the run's test fold (already preprocessed by the
workflow). Predictions are the `predict` rule's; explanations are `TrainedRun.explain`, the
`explain_record` rule's code path, with the app's budget from config `serve.explain`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from ptbxl_xai.app.uploads import UploadError, parse_form, upload_folder, write_record_files
from ptbxl_xai.config import SPLITS
from ptbxl_xai.data.conditioning import to_mv
from ptbxl_xai.data.parquet_io import lead_calibration, read_labels
from ptbxl_xai.data.ptbxl import LEADS, bundled_statements
from ptbxl_xai.data.user_record import UserRecordError, prepare_user_record_scaled
from ptbxl_xai.evaluation.context import context_sentence
from ptbxl_xai.explain.counterfactual import search_options
from ptbxl_xai.explain.spaces.attention import (
    attention_to_space,
    broadcast_leads,
    pool_by_overlap,
    step_segment_overlap,
)
from ptbxl_xai.explain.spaces.features import FIDUCIALS, FeatureSpace, bin_space, space_for_record
from ptbxl_xai.layout import Layout
from ptbxl_xai.report.tables import label_descriptions
from ptbxl_xai.report.viewer import validate_record
from ptbxl_xai.trained_run import TrainedRun

log = logging.getLogger(__name__)

ECG_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits, within int64 (PTB-XL's ids have 5)
UPLOAD_ID = 0  # ecg_id of an uploaded record (as in the explain_record rule); test records keep theirs


class RecordError(ValueError):
    """A record the run cannot predict or explain; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self):  # raised in an explain worker process, re-raised in the server
        return (RecordError, (self.status, self.message))


@dataclass
class Record:
    """A conditioned record ready for the model, and where it came from."""

    x: np.ndarray  # [12, samples] float32, the model's input
    ecg_id: int
    source: str  # shown to the user: "your upload rec.hea + rec.dat", "test record 123 (fold 10)"
    notes: list[str]
    true: np.ndarray | None = None  # reference labels (test records only)
    lead_scale: np.ndarray | None = None  # mV = x * lead_scale + lead_offset (test records: from the Parquet)
    lead_offset: np.ndarray | None = None
    space: FeatureSpace | None = None  # the explanation space, once `RunService.feature_space` decided it
    beats: np.ndarray | None = None  # [beats, 7] global fiducials (FIDUCIALS order) where delineated


def app_explain_config(explain: dict, serve_explain: dict) -> dict:
    """The workflow's `explain` config with `serve.explain` merged over it.

    Faithfulness curves and gradient SHAP are off: the page shows SHAP, LIME and attention only,
    and a request should not pay for what nobody sees.
    """
    cfg = {k: v for k, v in explain.items() if k not in ("runs", "n_boot", "records", "strategy")}
    for section in ("shap", "lime"):
        cfg[section] = {**explain.get(section, {}), **serve_explain.get(section, {})}
    cfg["shap"]["gradient"] = False
    cfg["faithfulness"] = {**explain.get("faithfulness", {}), "enabled": False}
    cfg["compare_features"] = False  # one feature space per request: the configured one
    return cfg


class RunService:
    """The model, thresholds, label descriptions and training reference of one run, loaded once."""

    def __init__(self, results: str | Path, run: str, config: dict):
        results = Path(results)
        self.results, self.config = results, config  # what an explain worker process needs to load the same run
        self.trained = TrainedRun.from_results(results, run, config)  # the loader the workflow's stages use
        self.run, self.data_dir = run, self.trained.data_dir
        # The conditioning the model was trained with, as the data Parquet records it.
        self.settings = self.trained.settings
        self.units = "z-score" if self.settings.zscore else "mV"
        self.lead_stats = self.trained.lead_stats
        self.model, self.label_names = self.trained.model, self.trained.label_names
        self.thresholds, self.label_set = self.trained.thresholds, self.trained.label_set
        self.descriptions = label_descriptions(self.label_names, bundled_statements())
        context = Path(
            Layout(str(results)).metrics(run, "context")
        )  # the evaluate rule's: data, records, labels, split
        self.context = context_sentence(json.loads(context.read_text())) if context.is_file() else ""
        self.explain_cfg = app_explain_config(config["explain"], config.get("serve", {}).get("explain", {}))
        self.features = self.explain_cfg.get("features", "bins")  # config explain.features, where it exists
        self.delineation_method = config.get("delineate", {}).get("method", "neurokit_prominence")
        if self.explain_cfg["background"] == "normal_template" and not self.trained.has_template:
            # the workflow builds it (rule normal_template); without it, the zero background
            log.warning("%s missing: explanations use the zero background", Layout(str(results)).template(run))
            self.explain_cfg["background"] = "zero"
        self.method_flags, self.known_answer_flags = self._flags(results, run, config)
        self.counterfactual_options = search_options(config.get("counterfactuals"))  # the rule's caps and edits
        test_parts = self.trained.test_parts
        self._test_parts = test_parts
        self._bin_overlaps: dict[int, tuple[FeatureSpace, np.ndarray]] = {}
        self.test_ids = np.sort(
            np.concatenate([pq.read_table(p, columns=["ecg_id"]).column(0).to_numpy() for p in test_parts])
        )
        self._truth: dict[int, np.ndarray] = {}
        labels_path = Path(Layout(str(results)).labels())
        if labels_path.is_file() and self.label_set:
            ids, y, names = read_labels(labels_path, self.label_set)
            if names == self.label_names:
                keep = np.isin(ids, self.test_ids)
                self._truth = dict(zip(ids[keep].tolist(), y[keep]))
        log.info(
            "run %s: %d labels (%s), %d test records, %s features, SHAP %d permutation(s), LIME %d samples",
            run,
            len(self.label_names),
            self.label_set,
            len(self.test_ids),
            self.features,
            self.explain_cfg["shap"].get("npermutations", 2),
            self.explain_cfg["lime"].get("num_samples", 1000),
        )

    def _flags(self, results: Path, run: str, config: dict) -> tuple[dict, dict]:
        """Each method's sanity flag (rule sanity's method_flags.tsv) and known-answer flag (rule known_answer's
        localisation.tsv, for this run's architecture), where the workflow has made them; shown on the page."""
        from ptbxl_xai.config import known_answer_variant
        from ptbxl_xai.explain.checks.known_answer import known_answer_flags
        from ptbxl_xai.report.viewer import method_flags_from_table

        layout = Layout(str(results))
        sanity, known = Path(layout.checks(run, "method_flags.tsv")), Path(layout.known_answer("localisation.tsv"))
        flags, planted = {}, {}
        try:  # a damaged table costs its flags (the page then says "not checked"), never the server
            if sanity.is_file():
                flags = method_flags_from_table(pd.read_csv(sanity, sep="\t"))
            if known.is_file():
                variant = known_answer_variant(config, run, self.trained.sidecar.get("hparams"))  # as trained
                planted = known_answer_flags(pd.read_csv(known, sep="\t"), variant, self.features,
                                             self.explain_cfg["background"])  # fmt: skip
        except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
            log.warning("method flags left out: %s or %s cannot be read (%s: %s)", sanity, known,
                        type(exc).__name__, exc)  # fmt: skip
        return flags, planted

    # ---- records ------------------------------------------------------------------------------
    def upload_record(self, header: Path, shown: str) -> Record:
        """An uploaded WFDB record through the workflow's preprocessing (as the explain_record rule)."""
        try:
            x, scale, offset, notes = prepare_user_record_scaled(header, self.settings, self.lead_stats)
        except UserRecordError as exc:  # the message names the temp file: name the upload instead
            raise RecordError(422, str(exc).replace(str(header), shown).replace(str(header.parent) + "/", "")) from None
        if not np.isfinite(x).all():
            raise RecordError(422, f"{shown}: the conditioned signal has NaN or infinite values")
        x = np.ascontiguousarray(x, dtype=np.float32)
        return Record(x, UPLOAD_ID, f"your upload {shown}", notes, lead_scale=scale, lead_offset=offset)

    def form_record(self, upload, cap: int, tmp_root=None) -> Record:
        """The record a parsed form (`ptbxl_xai.app.uploads.Upload`) names: its uploaded files, written into
        a fresh folder removed afterwards, or the test record of field `ecg_id`. Bad input: RecordError."""
        if "ecg_id" in upload.fields:
            if upload.files:
                raise RecordError(400, "send either a record (files) or `ecg_id`, not both")
            text = upload.fields["ecg_id"]
            if not ECG_ID.fullmatch(text):  # not str.isdigit: it accepts '²', which int() refuses
                raise RecordError(400, f"ecg_id must be a whole number, not {text!r}")
            return self.test_record(int(text))
        try:
            with upload_folder(tmp_root) as folder:
                return self.upload_record(write_record_files(upload, folder, cap), upload.names)
        except UploadError as exc:
            raise RecordError(exc.status, exc.message) from None

    def predict_form(self, body: bytes, content_type: str | None, cap: int, tmp_root=None) -> bytes:
        """`POST /api/predict` from the raw request body to the JSON answer, so that a worker process does
        all of it (parse, prepare, predict, encode) and the server only passes bytes. Bad input: RecordError."""
        try:
            upload = parse_form(body, content_type)
        except UploadError as exc:
            raise RecordError(exc.status, exc.message) from None
        include = upload.fields.get("include_signal", "").lower() in ("1", "true", "yes", "on")
        return json_bytes(self.predict(self.form_record(upload, cap, tmp_root), include))

    def test_record(self, ecg_id: int) -> Record:
        """A test-fold record of the run, as the workflow preprocessed it."""
        if ecg_id not in set(self.test_ids.tolist()):
            raise RecordError(404, f"ecg_id {ecg_id} is not a test record (fold 10) of run {self.run}")
        for part in self._test_parts:
            table = pq.read_table(part, filters=[("ecg_id", "=", ecg_id)], columns=["ecg_id", "signal"])
            if table.num_rows:
                flat = table.column("signal").combine_chunks().flatten().to_numpy(zero_copy_only=False)
                x = flat.reshape(len(LEADS), -1).astype(np.float32)
                calibration = lead_calibration(self.data_dir, SPLITS["test"], [ecg_id])
                scale, offset = (None, None) if calibration is None else (calibration[0][0], calibration[1][0])
                source = f"test record {ecg_id} (fold 10)"
                return Record(x, ecg_id, source, [], self._truth.get(ecg_id), scale, offset)
        raise RecordError(404, f"ecg_id {ecg_id}: not found in {self.data_dir}")

    def label_index(self, label: str | None) -> int:
        if not label:
            raise RecordError(400, f"missing form field `label`: one of {self.label_names}")
        if label not in self.label_names:
            raise RecordError(400, f"unknown label {label!r}; run {self.run} has {self.label_names}")
        return self.label_names.index(label)

    # ---- model calls --------------------------------------------------------------------------
    def feature_space(self, rec: Record) -> FeatureSpace:
        """The record's explanation space, decided once per request as the explain stage decides it: the
        run's `explain.features`, so wave segments from the record's own beats (the workflow's
        delineation method, on its mV signal), or time bins with the reason where it cannot be delineated."""
        if rec.space is None:
            table = None
            if self.features == "waves" and not self._delineate(rec):
                table = pd.DataFrame(rec.beats, columns=list(FIDUCIALS))
            rec.space = space_for_record(self.features, rec.x.shape[-1], self.settings.n_bins, table)
            rec.notes = list(dict.fromkeys(rec.notes + list(rec.space.notes)))
        return rec.space

    def predict(self, rec: Record, include_signal: bool = False) -> dict:
        """Probabilities, thresholds and decisions per label, and the attention per lead x feature.

        The JSON answer maps attention onto time bins (no delineation: predictions stay fast); with
        `include_signal` (the page) the record is delineated and everything is in its explanation space,
        the one `explain` will use."""
        space = self.feature_space(rec) if include_signal else None  # first: it may add a note
        probs, att = self._forward(rec.x[None])
        p = probs[0].astype(float)
        labels = [
            {
                "name": name,
                "description": self.descriptions.get(name, ""),
                "probability": float(p[i]),
                "threshold": float(self.thresholds[i]),
                "predicted": bool(p[i] >= self.thresholds[i]),
                **({"true": bool(rec.true[i])} if rec.true is not None else {}),
            }
            for i, name in enumerate(self.label_names)
        ]
        out = {
            "run": self.run,
            "label_set": self.label_set,
            "ecg_id": rec.ecg_id,
            "source": rec.source,
            "sampling_rate": self.settings.rate,
            "samples": int(rec.x.shape[-1]),
            "notes": rec.notes,
            "labels": labels,
            "attention": self._attention(att[0], space, rec.x.shape[-1]),
        }
        if include_signal:
            out["record"] = self.viewer_record(rec, p, out["attention"])
        return out

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sigmoid probabilities, attention), as the predict rule computes them. Not through
        `training.predict`: it moves the model to its device on every call, and `Module.to`
        rebuilds the LSTM's weight references, which races with a forward in another thread."""
        with torch.inference_mode():
            logits, att = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return torch.sigmoid(logits.float()).numpy(), att.float().numpy()

    def _attention(self, steps: np.ndarray, space: FeatureSpace | None, samples: int) -> dict | None:
        """The model's attention over its time steps, mapped onto the features of `space` (None: time bins)
        by overlap, normalised by how many steps cover each feature, as the explain stage maps it."""
        if not hasattr(self.model, "step_to_sample_edges"):
            return None
        if space is None:  # time bins: the same for every record of this length
            space, overlap = self._bin_overlap(samples)
            values = pool_by_overlap(steps, overlap)
        else:
            values = attention_to_space(steps, self.model.step_to_sample_edges(samples), space)
        return {
            "feature_space": space.kind,
            "features": list(space.segment_names)
            if space.kind == "waves"
            else [str(b) for b in range(space.n_segments)],
            "leads": list(LEADS),
            "values": broadcast_leads(values, len(LEADS)).tolist(),
            "note": "mean attention per step covering each feature; the model attends over time, not leads",
        }

    def _bin_overlap(self, samples: int) -> tuple[FeatureSpace, np.ndarray]:
        """(time-bin space, step-to-bin overlap) of records with `samples` samples, computed once per
        length rather than per prediction (benchmarks/app_load.py); the model sees one length, so the cache
        stays small."""
        if samples not in self._bin_overlaps:
            space = bin_space(samples, self.settings.n_bins)
            self._bin_overlaps[samples] = space, step_segment_overlap(self.model.step_to_sample_edges(samples), space)
        return self._bin_overlaps[samples]

    def viewer_record(self, rec: Record, probs: np.ndarray, attention: dict | None) -> dict:
        """The record in the viewer's contract, JSON-ready (`validate_record`), for the page's script."""
        return validate_record(self.raw_viewer_record(rec, probs, attention))

    def page_record(self, rec: Record) -> dict:
        """The record for the page's embedded data (`viewer_html` validates it itself)."""
        probs, att = self._forward(rec.x[None])
        return self.raw_viewer_record(rec, probs[0], self._attention(att[0], self.feature_space(rec), rec.x.shape[-1]))

    def raw_viewer_record(self, rec: Record, probs: np.ndarray, attention: dict | None) -> dict:
        """The record in the viewer's contract (ptbxl_xai.report.viewer), before validation."""
        record = {
            "ecg_id": int(rec.ecg_id),
            "sampling_rate": int(self.settings.rate),
            "leads": list(LEADS),
            "signal": rec.x,
            "units": self.units,
            "label_names": self.label_names,
            "label_descriptions": self.descriptions,
            "probabilities": np.clip(probs, 0, 1),
            "true": None if rec.true is None else [int(v) for v in rec.true],
            "thresholds": np.clip(self.thresholds, 0, 1),
            "attributions": {},
        }
        if rec.space is None:
            record["n_bins"] = int(self.settings.n_bins)
        else:  # the explanation space; beats (none where delineation failed) give bands and the median beat
            record["features"] = rec.space
            if rec.beats is not None:
                record["beats"] = rec.beats
        if attention is not None:
            record["attributions"]["attention"] = {name: attention["values"] for name in self.label_names}
        if rec.lead_scale is not None:  # drawn in mV, as the viewer pages of the workflow draw records
            record["lead_scale"], record["lead_offset"] = rec.lead_scale, rec.lead_offset
        if rec.notes:
            record["notes"] = list(rec.notes)
        if self.method_flags:
            record["method_flags"] = self.method_flags
        if self.known_answer_flags:
            record["known_answer_flags"] = self.known_answer_flags
        return record

    def explanation_inputs(self) -> tuple:
        """(training reference, normal template) of the explanations, loaded on first use: a prediction
        worker never needs them, nor shap, lime and matplotlib (~220 MB of its memory)."""
        return self.trained.training_reference(self.explain_cfg), self.trained.template

    def explain(self, rec: Record, label: int, should_stop=None) -> dict:
        """SHAP and LIME for one label of one record, over the run's feature space, with quality figures.
        should_stop() -> True (its client has gone) stops it between model calls (`CallsStopped`)."""
        start = time.perf_counter()
        self.feature_space(rec)  # delineates the record where the run explains on waves
        beats = (
            None
            if rec.beats is None or not len(rec.beats)
            else {rec.ecg_id: pd.DataFrame(rec.beats, columns=list(FIDUCIALS))}
        )
        expl = self.trained.explain(
            rec.x[None], [[label]], [rec.ecg_id], self.explain_cfg, beats=beats, progress=False, should_stop=should_stop
        )
        seconds = time.perf_counter() - start
        name = self.label_names[label]
        attr, meta = expl.attributions, expl.meta.set_index("method")
        out = {
            "run": self.run,
            "ecg_id": rec.ecg_id,
            "source": rec.source,
            "label": name,
            "sampling_rate": self.settings.rate,
            "notes": rec.notes,
            "feature_space": self.features,
            "leads": list(LEADS),
            "seconds": round(seconds, 4),
        }
        if rec.beats is not None and rec.space is not None and rec.space.kind == "waves":
            out["beats"] = {"fiducials": list(FIDUCIALS), "samples": rec.beats.tolist()}  # the segments' source
        for method in ("shap", "lime"):
            rows = attr[(attr["method"] == method) & (attr["label"] == name)]
            # feature names in the explainer's order (wave segments or bins), whichever the rows carry
            col = "feature" if "feature" in rows.columns else "bin"
            order = list(dict.fromkeys(rows[col]))
            grid = rows.pivot(index="lead", columns=col, values="value").reindex(index=list(LEADS), columns=order)
            out["features"] = [str(c) for c in order]
            if "feature_space" in rows.columns and len(rows):
                out["feature_space"] = str(rows["feature_space"].iloc[0])
            m = meta.loc[method]
            out[method] = {"values": grid.to_numpy().tolist(), "n_model_calls": int(m["n_evals"])}
        sm, lm = meta.loc["shap"], meta.loc["lime"]
        out["shap"].update(
            base=float(sm["base"]),
            prediction=float(sm["fx"]),
            additivity_error=float(sm["additivity_error"]),
            npermutations=int(self.explain_cfg["shap"].get("npermutations", 2)),
        )
        out["lime"].update(
            score=float(lm["score"]),
            intercept=float(lm["intercept"]),
            local_prediction=float(lm["fx"]),
            num_samples=int(self.explain_cfg["lime"].get("num_samples", 1000)),
        )
        return out

    def counterfactual(self, rec: Record, label: int, should_stop=None) -> dict:
        """What would make this record's call of one label normal (`TrainedRun.counterfactual_answer`: the
        fewest segments made normal, the smallest ST/T/QRS/PR edit of each kind, the median beats for the
        overlay), or, for a record that cannot be delineated, why there is none (`available` false)."""
        start = time.perf_counter()
        space = self._wave_space(rec)
        scale, offset = self._mv_calibration(rec)
        beats = pd.DataFrame(rec.beats, columns=list(FIDUCIALS)) if space.kind == "waves" else None
        answer = self.trained.counterfactual_answer(
            rec.x, rec.ecg_id, self.label_names[label], self.explain_cfg, beats=beats, lead_scale=scale,
            lead_offset=offset, options=self.counterfactual_options, not_delineated="; ".join(space.notes),
            should_stop=should_stop,
        )  # fmt: skip
        out = {
            "run": self.run,
            "ecg_id": rec.ecg_id,
            "source": rec.source,
            "sampling_rate": self.settings.rate,
            "notes": rec.notes,
            "leads": list(LEADS),
            **answer,
            "plausibility": "not checked here (no second delineation per answer); the workflow's rule "
            "counterfactuals checks it for test records",
        }
        out["seconds"] = round(time.perf_counter() - start, 4)
        return out

    def _delineate(self, rec: Record) -> str:
        """Delineate the record once (the workflow's method, on its mV signal) into `rec.beats`: "" where it
        worked, else why not (and `rec.beats` empty)."""
        from ptbxl_xai.data.delineation import DelineationError, delineate_record

        if rec.beats is not None:
            return "" if len(rec.beats) else "not delineated"
        try:
            rec.beats = delineate_record(to_mv(rec.x, *self._mv_calibration(rec)), self.settings.rate,
                                         self.delineation_method)  # fmt: skip
        except DelineationError as exc:
            rec.beats = np.empty((0, len(FIDUCIALS)), dtype=np.int32)
            log.info("%s: not delineated (%s)", rec.source, exc)
            return f"not delineated: {exc}"
        return ""

    def _wave_space(self, rec: Record) -> FeatureSpace:
        """The record's wave segments (delineating it here where the run explains on bins), or time bins with
        the reason in their notes."""
        if self.features == "waves":
            return self.feature_space(rec)
        why = self._delineate(rec)
        if why:
            bins = bin_space(rec.x.shape[-1], self.settings.n_bins)
            return FeatureSpace(bins.kind, bins.segment_of_sample, bins.segment_names, notes=(why,))
        return space_for_record("waves", rec.x.shape[-1], self.settings.n_bins,
                                pd.DataFrame(rec.beats, columns=list(FIDUCIALS)))  # fmt: skip

    def _mv_calibration(self, rec: Record) -> tuple[np.ndarray, np.ndarray]:
        """(lead_scale, lead_offset) [leads] of a record: mV = x * scale + offset (1 and 0 where x is mV)."""
        if rec.lead_scale is None:
            return np.ones(len(LEADS), np.float32), np.zeros(len(LEADS), np.float32)
        return np.asarray(rec.lead_scale, np.float32), np.asarray(rec.lead_offset, np.float32)


def json_bytes(answer: dict) -> bytes:
    """The answer as the server sends it (Starlette's JSONResponse encoding: compact, UTF-8, no NaN)."""
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


def warm_up(service: RunService) -> float:
    """Explain one test record once, so the first user does not wait for one-off work (torch's first calls,
    delineation, the training reference and template, lime's and shap's imports); returns seconds."""
    start = time.perf_counter()
    service.explain(service.test_record(int(service.test_ids[0])), 0)
    seconds = time.perf_counter() - start
    log.info("warm-up (one explanation, once per process): %.1f s", seconds)
    return seconds


def set_torch_threads(threads: int) -> None:
    """Intra-op threads per model call; requests run in parallel threads on top of this."""
    torch.set_num_threads(max(1, int(threads)))
