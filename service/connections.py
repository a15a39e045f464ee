"""uvicorn's HTTP/1.1 connections with what they lack: a deadline for each request's
headers, and refusals of unreadable requests in the service's error shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn import config as uvicorn_config
from uvicorn.protocols.http.h11_impl import H11Protocol

from service import logs
from service.errors import RequestError
from service.metrics import REJECTED, endpoint_label

# what BentoML's worker gets: uvicorn.Config(http="auto"), the name this module rebinds
_AUTO = "auto"
_UVICORN_AUTO = "uvicorn.protocols.http.auto:AutoHTTPProtocol"


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 connection, closed when a request's headers are not complete within
    ``header_timeout`` seconds of the connection or of the previous answer. uvicorn arms
    no timer before a first answer and each byte received cancels its keep-alive timer:
    a client trickling headers held a connection for as long as it liked."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """h11 refused the request (its line, headers or framing: a repeated or conflicting
        ``Content-Length``, a repeated ``Transfer-Encoding``...): 400 in the error shape."""
        error = RequestError("malformed HTTP request: its request line, headers or framing "
                             "(Content-Length, Transfer-Encoding) cannot be read",
                             reason="malformed_request")
        REJECTED.labels(endpoint_label(None), error.reason).inc()
        logs.refused(None, 400, error.to_dict())
        body = json.dumps(error.to_dict()).encode()
        for event in (h11.Response(status_code=400, reason=b"Bad Request", headers=[
                          (b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._header_deadline = self.loop.call_later(self.header_timeout,
                                                     self._headers_overdue)

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        # IDLE: h11 has not read a whole request line and headers since it was armed
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            REJECTED.labels(endpoint_label(None), "header_timeout").inc()
            logs.refused(None, 408, {"reason": "header_timeout"})
            self.transport.close()


def install(header_timeout: float) -> None:
    """Make :class:`DeadlineH11Protocol` what uvicorn serves for ``http="auto"``, the
    protocol BentoML's worker asks for (it offers no option to choose one); call before
    the worker starts uvicorn. ``RuntimeError`` when uvicorn no longer names its automatic
    protocol as this module expects (an upgrade: check what is patched over)."""
    ours = f"{__name__}:{DeadlineH11Protocol.__qualname__}"
    protocols: dict[str, Any] = uvicorn_config.HTTP_PROTOCOLS
    if protocols.get(_AUTO) not in (_UVICORN_AUTO, ours):
        raise RuntimeError(f"uvicorn's HTTP_PROTOCOLS[{_AUTO!r}] is "
                           f"{protocols.get(_AUTO)!r}, not {_UVICORN_AUTO!r}: the header "
                           "deadline of service/connections.py needs a look at this uvicorn")
    DeadlineH11Protocol.header_timeout = header_timeout
    protocols[_AUTO] = ours
