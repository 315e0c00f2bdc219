"""uvicorn's HTTP protocol (httptools) with a deadline for request headers (`serve.header_timeout_s`).

uvicorn times out an idle keep-alive connection, but not one that connects and then sends its headers a
byte at a time (slowloris): such connections would hold `serve.max_connections` slots for as long as
the client likes. Here a new connection, and each further request on it from its first byte, must
complete its headers within the deadline; otherwise it gets 408 and is closed.
"""

from __future__ import annotations

import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


def header_deadline_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn's `http=`, closing connections slower than `seconds`."""
    if not seconds > 0:
        raise ValueError(f"header timeout must be > 0 s, got {seconds!r}")
    body = json.dumps({"error": f"request headers not complete after {seconds:g} s (serve.header_timeout_s)"})
    answer = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n{body}"
    ).encode("ascii")

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # a further request on a kept-alive connection
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                log.info("%s: headers not complete after %g s: 408, connection closed", self.client, seconds)
                self.transport.write(answer)
                self.transport.close()

    return HeaderDeadlineProtocol
