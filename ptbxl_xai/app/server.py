"""The ASGI app (FastAPI): the page, GET /api/health, POST /api/predict, POST /api/explain.

Model calls never run on the event loop. By default they run in worker processes
(`ptbxl_xai.app.worker_pool`): one for predictions, at the server's priority, and `serve.explain_workers`
reniced ones for explanations, so the server process only speaks HTTP and a long SHAP request leaves
the CPU to the predictions of other clients. With `serve.predict_process` / `serve.explain_process`
false they run in threads of the server process (anyio), behind their own limiters. Every malformed request
gets a 4xx JSON answer `{"error": "..."}` naming what is wrong, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import threading
import time
from contextlib import asynccontextmanager, suppress
from functools import partial
from importlib import resources

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ptbxl_xai import __version__
from ptbxl_xai.app.guard import RETRY_AFTER_S, ClientError, Guard, allowed_host_names
from ptbxl_xai.app.page import CSP_HEADER, app_page
from ptbxl_xai.app.service import RecordError, RunService, warm_up
from ptbxl_xai.app.settings import ServeSettings
from ptbxl_xai.app.uploads import UploadError, check_size, parse_form
from ptbxl_xai.app.worker_pool import CLIENT_GONE, ClientGone, stop_when_gone
from ptbxl_xai.report.viewer import ASSETS as VIEWER_ASSETS
from ptbxl_xai.report.viewer import viewer_asset

log = logging.getLogger(__name__)

STATIC = {"js": "text/javascript", "css": "text/css"}
APP_ASSETS = ("app.js", "app.css", "docs.js")
SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")  # fastapi-offline's copy of Swagger UI
# /docs: scripts and styles only as files from here (Swagger UI sets some styles from script, which the
# policy allows), nothing from anywhere else, no framing.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: API</title>
<link rel="stylesheet" href="assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="assets/swagger-ui-bundle.js"></script><script src="assets/docs.js"></script></body></html>
"""
ERROR = {"content": {"application/json": {"example": {"error": "rec.hea: 3 signals ['I', 'II', 'V1']; ..."}}}}
UPLOAD_FORM = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "hea": {"type": "string", "format": "binary", "description": "WFDB header (.hea)"},
                    "dat": {"type": "string", "format": "binary", "description": "WFDB signal file (.dat)"},
                    "zip": {"type": "string", "format": "binary", "description": "or: a zip of one record"},
                    "ecg_id": {"type": "integer", "description": "or: a test record of the run (fold 10)"},
                    "include_signal": {
                        "type": "boolean",
                        "description": "predict: also return the conditioned record for the viewer",
                    },
                },
            }
        }
    },
}


class Readiness:
    """Where the app's start-up stands (`starting`, `ready`, `failed`): /api/health reports it at once,
    and model requests are answered 503 with Retry-After until the run is ready in every worker."""

    def __init__(self):
        self.state, self.error, self._began, self.seconds = "starting", None, time.monotonic(), None

    def finish(self, error: BaseException | None = None) -> None:
        self.seconds = time.monotonic() - self._began
        if error is None:
            self.state = "ready"
        else:
            self.state, self.error = "failed", f"{type(error).__name__}: {error}"

    def elapsed(self) -> float:
        return self.seconds if self.seconds is not None else time.monotonic() - self._began

    def require(self) -> None:
        """Raise the 503 a model request gets before the app is ready."""
        if self.state == "starting":
            raise ClientError(
                503,
                f"the server is starting ({self.elapsed():.0f} s so far: loading the run into its worker "
                "processes and explaining one record to warm up); try again shortly",
                retry_after=RETRY_AFTER_S,
            )
        if self.state == "failed":
            raise ClientError(503, f"the server failed to start ({self.error}); see its log")


def status_page(message: str, refresh_s: int | None) -> str:
    """The page served instead of the app's while it starts (reloading itself) or after a failed start."""
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    again = f"<p>This page reloads itself every {refresh_s} s.</p>" if refresh_s else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">{refresh}'
        f"<title>ecgxai serve</title></head><body><p>{html.escape(message)}</p>{again}</body></html>"
    )


def create_app(
    service: RunService, settings: ServeSettings, tmp_root=None, warm: bool = True, wait_ready: bool = False
) -> FastAPI:
    """The app for one loaded run. `tmp_root`: where the per-request folders go (system temp by default);
    `warm`: explain a test record once before serving, so the first request is as fast as the others.
    With `settings.predict_process` / `settings.explain_process`, predictions / explanations run in worker
    processes (`ServicePool`, explanations reniced), started with the app and stopped with it.

    Start-up (the page's first record, the workers, the warm-up) runs in the background: the server
    answers /api/health at once and model requests once it is ready (`app.state.readiness`).
    `wait_ready`: finish start-up before serving instead (tests, where every request wants the model)."""
    pools, page = {}, {}
    readiness = Readiness()

    async def start_up(app):
        from ptbxl_xai.app.worker_pool import ServicePool, freeze_heap

        try:
            # The first test record, predicted, so the page opens with an ECG on it.
            first = int(service.test_ids[0])
            page["html"] = await anyio.to_thread.run_sync(
                lambda: app_page(service, service.page_record(service.test_record(first)), settings)
            )
            start = partial(ServicePool, service.results, service.run, service.config, threads=settings.threads)
            if settings.predict_process:
                pools["predict"] = await anyio.to_thread.run_sync(
                    partial(start, workers=settings.predict_workers, nice=0, role="prediction",
                            warm="predict" if warm else None)
                )  # fmt: skip
            if settings.explain_process:
                pools["explain"] = await anyio.to_thread.run_sync(
                    partial(start, workers=settings.explain_workers, nice=settings.explain_nice, role="explanation",
                            warm="explain" if warm else None, max_queued=settings.max_queued_explanations)
                )  # fmt: skip
            app.state.predict_pool, app.state.explain_pool = pools.get("predict"), pools.get("explain")
            if warm and not settings.explain_process:  # the workers warm up themselves
                await anyio.to_thread.run_sync(warm_up, service)
            for pool in pools.values():  # loading in parallel; wait for all
                await pool.started()
            freeze_heap()  # the server's long-lived objects too
        except Exception as exc:
            readiness.finish(exc)
            log.exception("start-up failed after %.1f s; model requests get 503", readiness.elapsed())
            return
        readiness.finish()
        log.info("ready after %.1f s (run %s)", readiness.seconds, service.run)

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(start_up(app))
        try:
            if wait_ready:
                await task
                if readiness.state != "ready":
                    raise RuntimeError(f"start-up failed: {readiness.error}")
            yield
        finally:
            task.cancel()  # a server stopped while it starts stops starting
            with suppress(asyncio.CancelledError):
                await task
            for pool in pools.values():
                await anyio.to_thread.run_sync(pool.close)

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own /docs and /redoc load their scripts from a CDN; /docs below does not
        redoc_url=None,
        title=f"ecgxai serve: run {service.run}",
        version=__version__,
        description=(
            f"Predictions and SHAP/LIME/attention explanations of the trained run `{service.run}` "
            f"({len(service.label_names)} labels, label set {service.label_set}) for one 12-lead WFDB record. "
            f"Uploads up to {settings.max_upload_mb:g} MB; nothing uploaded is kept."
        ),
    )
    app.add_middleware(
        Guard,
        hosts=allowed_host_names(settings.host, settings.allowed_hosts),
        origins=settings.allowed_origins,
        max_buffered=settings.max_buffered_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    explain_limiter = anyio.CapacityLimiter(settings.explain_workers)
    # One prediction at a time: the request work is mostly Python under the GIL, so more threads only
    # contend for it. benchmarks/app_load.py, 16 clients on 2 cores: server CPU per prediction 11.0 ms with
    # anyio's 40 threads, 6.3 ms with 2, 5.1 ms with 1 (p99 253 -> 119 -> 108 ms).
    predict_limiter = anyio.CapacityLimiter(1)
    cap = settings.max_upload_bytes

    @app.exception_handler(ClientError)
    async def _client_error(request: Request, exc: ClientError):
        # one line per refusal, whatever the client put in a name or value (control characters escaped)
        log.info("%s %s -> %d: %s", request.method, request.url.path, exc.status, one_line(exc.message))
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": "; ".join(e.get("msg", str(e)) for e in exc.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    async def read_body(request: Request) -> bytes:
        """The request body up to the cap, refused as soon as it is exceeded."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit():
            _check(check_size, int(declared), cap)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            _check(check_size, size, cap)
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_form(request: Request):
        """The request body, parsed off the event loop."""
        body = await read_body(request)
        return await anyio.to_thread.run_sync(partial(_check, parse_form, body, request.headers.get("content-type")))

    def form_record(upload):
        """The uploaded record (in a fresh folder, removed afterwards) or the test record the form names."""
        return _check(service.form_record, upload, cap, tmp_root)

    app.state.readiness = readiness

    @app.get("/api/health", summary="Liveness: answers at once, with `status` starting, ready or failed")
    async def health():
        return {
            "status": readiness.state,
            "startup_seconds": round(readiness.elapsed(), 1),
            **({"error": readiness.error} if readiness.error else {}),
            "run": service.run,
            "labels": service.label_names,
            "label_set": service.label_set,
            "sampling_rate": service.settings.rate,
            "feature_space": service.features,
            "test_records": len(service.test_ids),
        }

    @app.get(
        "/api/ready",
        summary="Readiness: 200 once the run is loaded and warm, 503 with Retry-After before",
        responses={503: ERROR},
    )
    async def ready():
        readiness.require()
        return {"status": readiness.state, "startup_seconds": round(readiness.seconds, 1)}

    @app.get("/api/test-records", summary="ecg_ids of the run's test records (fold 10)")
    async def test_records():
        return {"run": service.run, "fold": 10, "ecg_ids": service.test_ids.tolist()}

    @app.post(
        "/api/predict",
        summary="Probabilities, thresholds, decisions and attention for one record",
        openapi_extra={"requestBody": UPLOAD_FORM},
        responses={400: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 422: ERROR, 503: ERROR},
    )
    async def api_predict(request: Request):
        readiness.require()
        body, content_type = await read_body(request), request.headers.get("content-type")
        if "predict" in pools:  # the worker parses, predicts and encodes; the server passes bytes
            try:
                answer = await pools["predict"].predict(body, content_type, cap, tmp_root)
            except RecordError as exc:
                raise ClientError(exc.status, exc.message) from None
        else:
            answer = await anyio.to_thread.run_sync(
                partial(_check, service.predict_form, body, content_type, cap, tmp_root), limiter=predict_limiter
            )
        return Response(answer, media_type="application/json")

    @app.post(
        "/api/explain",
        summary="SHAP and LIME per feature for one label of one record (form field `label`)",
        openapi_extra={
            "requestBody": _with_label(UPLOAD_FORM, service.label_names),
        },
        responses={400: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 422: ERROR, 503: ERROR},
    )
    async def api_explain(request: Request):
        return await explained(request, "explain")

    @app.post(
        "/api/counterfactual",
        summary="What would make the record's call of one label normal: the fewest segments made normal and the "
        "smallest ST/T/QRS/PR edit (form field `label`)",
        openapi_extra={
            "requestBody": _with_label(UPLOAD_FORM, service.label_names),
        },
        responses={400: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 422: ERROR, 503: ERROR},
    )
    async def api_counterfactual(request: Request):
        return await explained(request, "counterfactual")

    async def explained(request: Request, what: str):
        """An explain-pool answer (`explain` or `counterfactual`) for the form's record and label."""
        readiness.require()
        upload = await read_form(request)
        label = _check(service.label_index, upload.fields.get("label"))
        # Preparing the record is cheap; only the answer itself waits for an explain worker.
        record = await anyio.to_thread.run_sync(form_record, upload)
        # A client that disconnects drops its request: out of the queue, or stopped between model calls.
        if "explain" in pools:
            try:
                return await getattr(pools["explain"], what)(record, label, gone=request.is_disconnected)
            except RecordError as exc:
                raise ClientError(exc.status, exc.message) from None
            except ClientGone:
                return Response(status_code=CLIENT_GONE)
        stop = threading.Event()
        running = asyncio.ensure_future(
            anyio.to_thread.run_sync(
                partial(_check, getattr(service, what), record, label, stop.is_set), limiter=explain_limiter
            )
        )
        try:
            return await stop_when_gone(running, request.is_disconnected, stop.set)
        except ClientGone:
            return Response(status_code=CLIENT_GONE)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        if "html" not in page:  # starting (or failed): a page that says so and reloads itself
            try:
                readiness.require()
            except ClientError as exc:
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
                return HTMLResponse(status_page(exc.message, exc.retry_after), status_code=503, headers=headers)
        return HTMLResponse(page["html"], headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP_HEADER})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs():
        text = DOCS_PAGE.format(title=html.escape(app.title))
        return HTMLResponse(text, headers={"Content-Security-Policy": DOCS_CSP})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)  # no icon, and no 404 in the browser console

    @app.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str):
        if name in VIEWER_ASSETS:  # the viewer's own files, which the page links rather than inlines
            return Response(viewer_asset(name), media_type=STATIC[name.rsplit(".", 1)[1]])
        if name in SWAGGER_ASSETS:
            data = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
        elif name in APP_ASSETS:
            data = resources.files("ptbxl_xai.app").joinpath("static", name).read_bytes()
        else:
            raise ClientError(404, f"no asset {name!r}")
        return Response(data, media_type=STATIC[name.rsplit(".", 1)[1]])

    return app


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(text: str) -> str:
    """text with its control characters (newlines included) escaped, so a log record stays one line."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", str(text)
    )


def _check(fn, *args):
    """Call fn; turn the errors that describe a bad request into ClientError (4xx JSON)."""
    try:
        return fn(*args)
    except (UploadError, RecordError) as exc:
        raise ClientError(exc.status, exc.message) from None


def _with_label(form: dict, labels) -> dict:
    schema = form["content"]["multipart/form-data"]["schema"]
    props = {k: v for k, v in schema["properties"].items() if k != "include_signal"}
    props["label"] = {"type": "string", "enum": list(labels), "description": "the label to explain"}
    return {**form, "content": {"multipart/form-data": {"schema": {**schema, "properties": props}}}}
