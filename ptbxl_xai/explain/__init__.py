"""Explain stage: SHAP, LIME, attention and faithfulness over shared features (core: explain_records)."""
