"""What the server refuses before a request reaches the app: foreign hosts and origins, too many bytes
held at once, bodies that never finish.

- Host (`serve.allowed_hosts`): a page on another site can point its own domain at 127.0.0.1 (DNS
  rebinding) and then read the answers; the request still names that domain in `Host`, so only the
  bound address, its loopback names and the configured names are served (400 otherwise).
- Origin (`serve.allowed_origins`): a browser sends any page's multipart POST without a preflight, with
  an `Origin` header naming that page. A request whose Origin is not this server (or a configured
  origin) is refused with 403; clients that send no Origin (curl, scripts) are not browsers' pages.
- Bytes (`serve.max_buffered_mb`): every request's body is counted while it arrives and released when
  its answer is sent; past the limit across all requests the server answers 503 with Retry-After.
- Time (`serve.body_timeout_s`): a body still incomplete after that long gets 408, so held uploads do
  not pile up. (Headers that never finish: `serve.header_timeout_s`, in ptbxl_xai.app.protocol.)
"""

from __future__ import annotations

import logging
import time
from ipaddress import ip_address
from urllib.parse import urlsplit

import anyio
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
RETRY_AFTER_S = 5  # what a 503 asks a client to wait: about one explanation


class ClientError(Exception):
    """A request the app refuses: HTTP `status`, a message naming what is wrong, and for a busy
    server the seconds after which to try again (Retry-After)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def allowed_host_names(host: str, extra=()) -> frozenset[str]:
    """Host names (lower case, no port) the server answers to when bound to `host`."""
    names = {host.strip("[]").lower(), *(h.lower() for h in extra)}
    if _is_loopback(host):
        names |= set(LOOPBACK_NAMES)
    return frozenset(names)


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def host_name(value: str) -> str | None:
    """The host part of a Host header ('example.org:8000' -> 'example.org', '[::1]:80' -> '::1');
    None where it is not one."""
    try:
        parts = urlsplit(f"//{value}")
        name, _ = parts.hostname, parts.port  # .port raises on a non-numeric port
    except ValueError:
        return None
    return name.lower() if name else None


class Guard:
    """ASGI middleware: Host and Origin checks, the byte budget and the body deadline (see the module)."""

    def __init__(self, app, *, hosts, origins, max_buffered: int, body_timeout_s: float):
        self.app = app
        self.any_host = "*" in hosts
        self.hosts, self.origins = frozenset(hosts), frozenset(o.rstrip("/").lower() for o in origins)
        self.max_buffered, self.body_timeout_s = max_buffered, body_timeout_s
        self.buffered = 0  # body bytes held by requests in flight

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal:
            status, message = refusal
            log.info("%s %s -> %d: %s", scope["method"], scope["path"], status, message)
            return await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
        held, body_done = 0, False
        deadline = time.monotonic() + self.body_timeout_s

        async def counted_receive():
            nonlocal held, body_done
            if body_done:  # after the body: only the disconnect is left to hear, with no deadline
                return await receive()
            try:
                with anyio.fail_after(max(deadline - time.monotonic(), 0.001)):
                    message = await receive()
            except TimeoutError:
                raise ClientError(
                    408, f"request body not complete after {self.body_timeout_s:g} s (serve.body_timeout_s)"
                ) from None
            size = len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if size and self.buffered + size > self.max_buffered:
                raise ClientError(
                    503,
                    f"the server holds {self.max_buffered / 2**20:g} MB of uploads already (serve.max_buffered_mb); "
                    "try again in a few seconds",
                    retry_after=RETRY_AFTER_S,
                )
            self.buffered += size
            held += size
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.buffered -= held

    def _refusal(self, scope, headers) -> tuple[int, str] | None:
        name = host_name(headers.get("host", ""))
        if not self.any_host and name not in self.hosts:
            return 400, (
                f"Host {headers.get('host', '')!r} is not this server's name ({', '.join(sorted(self.hosts))}); "
                "add it to serve.allowed_hosts to serve it"
            )
        origin = headers.get("origin")
        if origin is not None and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
            if origin.rstrip("/").lower() not in (own, *self.origins):
                return 403, (
                    f"cross-origin request from {origin!r} refused: only pages of this server may post to it "
                    "(serve.allowed_origins lists others)"
                )
        return None
