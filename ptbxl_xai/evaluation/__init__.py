"""Evaluation stage: metrics, thresholds, predictions, published references, ablation."""
