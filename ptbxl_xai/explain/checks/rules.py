"""Expert ECG rules: which wave segments and leads a cardiologist reads for each label.

The table lives in ``ptbxl_xai/resources/expert_rules.yaml`` with its citations (the AHA/ACCF/HRS 2009
recommendations, the Fourth Universal Definition of MI, Sokolow-Lyon/Cornell, ...). A rule becomes a
boolean mask over the features of a wave `FeatureSpace` (lead-major, 12 leads x P/PR/QRS/ST/T/TP), the
region whose share of an explanation the alignment checks and the deletion probe measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ptbxl_xai.explain.spaces.features import SEGMENTS, FeatureSpace

__all__ = ["ExpertRule", "lead_groups", "load_rules", "rule_mask", "rules_for_labels", "rules_table"]


@dataclass(frozen=True)
class ExpertRule:
    label: str
    segments: tuple[str, ...]
    leads: tuple[str, ...]  # canonical lead names of the feature space (e.g. "AVL")
    criterion: str
    citations: tuple[str, ...]  # citation keys
    references: tuple[str, ...]  # full references, in the order of `citations`

    @property
    def region(self) -> str:
        """Short human-readable description, e.g. 'QRS+ST in II,III,AVF'."""
        leads = "all leads" if len(self.leads) == 12 else ",".join(self.leads)
        return f"{'+'.join(self.segments)} in {leads}"


def _default_path() -> Path:
    return Path(str(resources.files("ptbxl_xai") / "resources" / "expert_rules.yaml"))


def _canonical_leads(names, groups: dict, lead_names: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Lead names or group names -> the feature space's lead names, in lead order, no duplicates."""
    if isinstance(names, str):
        names = [names]
    by_upper = {lead.upper(): lead for lead in lead_names}
    chosen = set()
    for name in names:
        key = str(name)
        if key in groups:
            chosen |= set(_canonical_leads(groups[key], {}, lead_names, where))
        elif key.upper() in by_upper:
            chosen.add(by_upper[key.upper()])
        else:
            raise ValueError(
                f"{where}: unknown lead or lead group {key!r}; leads: {list(lead_names)}, groups: {sorted(groups)}"
            )
    return tuple(lead for lead in lead_names if lead in chosen)


def load_rules(path: str | Path | None = None, lead_names: tuple[str, ...] | None = None) -> dict[str, ExpertRule]:
    """Read and check the rule table (default: the package's `expert_rules.yaml`); label -> rule.

    Every segment must be one of SEGMENTS, every lead a PTB-XL lead or a group of the table, every
    citation key defined; a mistake raises ValueError naming the file, the label and what is wrong.
    """
    from ptbxl_xai.data.ptbxl import LEADS

    lead_names = tuple(lead_names or LEADS)
    path = Path(path) if path is not None else _default_path()
    return _load(str(path), lead_names)


@lru_cache(maxsize=8)
def _load(path: str, lead_names: tuple[str, ...]) -> dict[str, ExpertRule]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    groups = doc.get("lead_groups") or {}
    cites = doc.get("citations") or {}
    raw = doc.get("rules")
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: no 'rules' mapping")
    out = {}
    for label, spec in raw.items():
        where = f"{path}: rule {label!r}"
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a mapping with segments, leads, criterion, cite")
        segs = spec.get("segments") or []
        bad = [s for s in segs if s not in SEGMENTS]
        if not segs or bad:
            raise ValueError(f"{where}: segments {bad or segs} not among {list(SEGMENTS)}")
        keys = spec.get("cite") or []
        missing = [k for k in keys if k not in cites]
        if not keys or missing:
            raise ValueError(f"{where}: needs citations defined under 'citations' (missing {missing or 'all'})")
        if not spec.get("criterion"):
            raise ValueError(f"{where}: no criterion text")
        leads = _canonical_leads(spec.get("leads", "all"), groups, lead_names, where)
        if not leads:
            raise ValueError(f"{where}: no leads")
        out[str(label)] = ExpertRule(
            label=str(label),
            segments=tuple(s for s in SEGMENTS if s in segs),
            leads=leads,
            criterion=str(spec["criterion"]),
            citations=tuple(keys),
            references=tuple(" ".join(str(cites[k]).split()) for k in keys),
        )
    return out


def lead_groups(names=None, path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """The table's lead groups (group -> the feature space's lead names), all or the ones `names` asks for."""
    from ptbxl_xai.data.ptbxl import LEADS

    path = Path(path) if path is not None else _default_path()
    with open(path, encoding="utf-8") as f:
        groups = (yaml.safe_load(f) or {}).get("lead_groups") or {}
    wanted = list(groups) if names is None else list(names)
    unknown = [g for g in wanted if g not in groups]
    if unknown:
        raise ValueError(f"{path}: unknown lead group(s) {unknown}; groups: {sorted(groups)}")
    return {g: _canonical_leads(groups[g], {}, tuple(LEADS), f"{path}: group {g!r}") for g in wanted}


def rules_for_labels(label_names, rules: dict[str, ExpertRule] | None = None) -> dict[str, ExpertRule]:
    """The rules of the labels that have one (label names as the model's outputs spell them)."""
    rules = load_rules() if rules is None else rules
    return {name: rules[name] for name in label_names if name in rules}


def rule_mask(rule: ExpertRule, space: FeatureSpace) -> np.ndarray:
    """[n_features] bool: the rule's segments x leads in a wave feature space.

    Raises ValueError for a bins space (time bins have no P/QRS/ST: the rule cannot be applied).
    """
    if space.kind != "waves":
        raise ValueError(f"expert rules need wave features, this record is explained in {space.kind}")
    mask = np.zeros(space.n_features, dtype=bool)
    lead_upper = [lead.upper() for lead in space.lead_names]
    for lead in rule.leads:
        li = lead_upper.index(lead.upper())
        for seg in rule.segments:
            mask[space.feature_index(li, seg)] = True
    return mask


def rules_table(rules: dict[str, ExpertRule] | None = None) -> pd.DataFrame:
    """The rule table as rows: label, segments, leads, criterion, citations, references."""
    rules = load_rules() if rules is None else rules
    return pd.DataFrame(
        [
            dict(
                label=r.label,
                segments="+".join(r.segments),
                leads=",".join(r.leads),
                criterion=r.criterion,
                citations=",".join(r.citations),
                references=" | ".join(r.references),
            )
            for r in rules.values()
        ]
    )
