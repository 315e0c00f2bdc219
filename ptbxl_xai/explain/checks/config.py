"""Settings of the checks of explanations (config keys `checks.*`, with the explainers' settings of `explain`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

METHODS = ("shap", "lime", "shap_gradient", "attention")


@dataclass
class CheckConfig:
    """Settings of the expert-rule and sanity checks (config keys `checks.*`)."""

    records_per_label: int = 20  # test positives per label with a rule (seeded sample)
    backgrounds: Sequence[str] = ("zero",)  # background kinds compared (masking methods and probe)
    methods: Sequence[str] = METHODS
    n_random_regions: int = 5  # random same-size regions per record in the deletion probe
    sanity_records: int = 10  # records re-explained at every step of the cascading randomisation
    max_rank_correlation: float = 0.5  # a method fails when signed Spearman after randomisation stays above
    seed: int = 0
    n_boot: int = 2000
    shap: dict = field(default_factory=dict)
    lime: dict = field(default_factory=dict)
