"""Building the explainers' settings dataclasses from config dicts."""

from dataclasses import fields


def settings_from_any(cls, cfg, what: str):
    """An instance of dataclass `cls` from None, an instance, or a dict; unknown keys are an error."""
    if cfg is None or isinstance(cfg, cls):
        return cfg or cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"unknown {what} settings {unknown}; allowed: {sorted(known)}")
    return cls(**dict(cfg))
