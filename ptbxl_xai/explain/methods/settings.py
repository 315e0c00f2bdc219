"""Building the explainers' settings dataclasses from config dicts."""

from dataclasses import fields

import numpy as np


def settings_from_any(cls, cfg, what: str):
    """An instance of dataclass `cls` from None, an instance, or a dict; unknown keys are an error."""
    if cfg is None or isinstance(cfg, cls):
        return cfg or cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"unknown {what} settings {unknown}; allowed: {sorted(known)}")
    return cls(**dict(cfg))


def record_seed(seed: int, *keys) -> int:
    """A record's own seed from the run's seed and the record's keys (its ecg_id, then e.g. a label index), so an
    explanation depends on the record, never on its position in a batch: the explain stage, the checks and the
    app draw the same permutations and samples for the same record."""
    return int(np.random.SeedSequence([int(seed), *[int(k) for k in keys]]).generate_state(1)[0])
