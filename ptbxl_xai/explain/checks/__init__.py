"""Checks of explanations: expert-rule alignment, the deletion probe, the background check, model randomisation, training seeds."""
