"""Explainers (permutation SHAP, gradient SHAP, LIME), faithfulness curves and `explain_records`, which explains records with every method."""
