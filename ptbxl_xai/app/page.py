"""The app's page: the static viewer's own page (ptbxl_xai/report/viewer `viewer_html`), not a copy.

The viewer's page (its template with viewer.css and viewer.js linked from /assets, the records as
JSON) gets three additions: the app's panel (test records, upload, status) at the top of the body,
the app's stylesheet and script (ptbxl_xai/app/static), and a content policy that lets the page
talk to this server and nothing else, with no inline script or style (the static viewer's inlines
them and allows no requests).
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources

from ptbxl_xai.report.viewer import viewer_html

# Scripts and stylesheets only as files from this server (the viewer's are linked, not inlined), so an
# injected inline script could not run; the records' JSON is a data block, which the policy does not execute.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)
# Only as a response header (a <meta> policy ignores it): no other site may frame the page.
CSP_HEADER = CSP + "; frame-ancestors 'none'"


def _text(package: str, *name: str) -> str:
    return resources.files(package).joinpath(*name).read_text(encoding="utf-8")


def _json_for_script(payload) -> str:
    """JSON that cannot close the <script> element it sits in."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _insert(page: str, pattern: str, text: str, before: bool) -> str:
    match = re.search(pattern, page, re.I)
    if match is None:
        raise RuntimeError(f"the viewer template has no {pattern!r}; the app cannot add its panel")
    at = match.start() if before else match.end()
    return page[:at] + text + page[at:]


def app_page(service, first_record: dict, settings) -> str:
    """The HTML page for `service`'s run, opening on `first_record` (a viewer record dict)."""
    title = f"ECG explanations, run {service.run}"
    app_config = {
        "run": service.run,
        "labels": service.label_names,
        "label_set": service.label_set,
        "test_ids": service.test_ids.tolist(),
        "sampling_rate": service.settings.rate,
        "feature_space": service.features,
        "max_upload_mb": settings.max_upload_mb,
        "npermutations": service.explain_cfg["shap"].get("npermutations"),
        "lime_samples": service.explain_cfg["lime"].get("num_samples"),
    }
    page = viewer_html([first_record], title, service.context, asset_url="assets")
    page = re.sub(
        r'<meta http-equiv="Content-Security-Policy"[^>]*>',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        page,
        flags=re.I,
    )
    panel = _text("ptbxl_xai.app", "static", "panel.html").replace("{{run}}", html.escape(service.run))
    config_tag = f'<script type="application/json" id="app-config">{_json_for_script(app_config)}</script>'
    page = _insert(page, r"</head>", '<link rel="stylesheet" href="assets/app.css">\n', before=True)
    page = _insert(page, r"<body[^>]*>", "\n" + panel, before=False)
    return _insert(page, r"</body>", config_tag + '\n<script src="assets/app.js"></script>\n', before=True)
