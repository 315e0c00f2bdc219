"""ptbxl_xai: the logic behind the ECG explainability workflow.

Importable and testable without Snakemake; the workflow's scripts are thin glue
around the modules here.
"""

__version__ = "0.1.0"
