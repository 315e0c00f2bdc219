"""The live app: `ecgxai serve --run NAME` (FastAPI + uvicorn) on a trained run of the workflow.

service  the run loaded once: preprocessing, predictions, SHAP/LIME/attention of one record
uploads  the multipart form, the upload cap, zips, and the per-request temporary folder
server   the ASGI app: the page, GET /api/health, POST /api/predict, POST /api/explain
page     the page: the viewer's template, CSS and JS (ptbxl_xai/report/viewer) plus the app's panel
settings the workflow config (as the Snakefile merges and validates it) and config `serve`
"""
