"""How long a client may take to send its request, so a slow sender cannot hold connections forever.

uvicorn bounds only the idle time between requests (``timeout_keep_alive``), and every byte received
resets it: a client sending its request a byte at a time (slowloris) keeps its connection, and a
worker's file descriptor, as long as it likes. Two bounds close that:

- the request head (request line and headers) must arrive within ``header_timeout_s`` of the
  connection opening or of the previous response: ``header_bounded``, uvicorn's h11 protocol with a
  deadline (Go's ``http.Server.ReadHeaderTimeout``; uvicorn has no such setting);
- the body must keep a minimum rate: ``body_timeout_s``, one second more per ``body_min_rate`` bytes
  received (Apache's ``mod_reqtimeout`` ``body=20,MinRate=500``): ``BodyDeadline``, an ASGI
  middleware bounding ``receive()``.

Past either, the client gets 408 (when a response is still possible) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .http_errors import ErrorBody

REQUEST_TIMEOUT = "request_timeout"


def _request_timeout_response(message: str) -> bytes:
    """A whole 408 response, written straight to the socket: no request exists to answer in h11."""
    body = orjson.dumps(ErrorBody(error=REQUEST_TIMEOUT, message=message).model_dump())
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _HeaderBoundedProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request head is late."""

    header_timeout_s: float = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._awaited_cycle: object = None  # the cycle current when the deadline was set

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
        super().connection_made(transport)
        self._await_request_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._awaited_cycle:  # a new request's head has arrived
            self._stop_waiting()

    def on_response_complete(self) -> None:
        self._await_request_head()  # first: the next, pipelined request may already be here
        super().on_response_complete()

    def _await_request_head(self) -> None:
        self._stop_waiting()
        self._awaited_cycle = self.cycle
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._head_is_late)

    def _stop_waiting(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _head_is_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        # Still at a request's start: answer it. Otherwise the previous request's body is still
        # trickling in after its response, and a second response to it is no HTTP: just close.
        if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(
                _request_timeout_response(
                    f"the request line and headers did not arrive within {self.header_timeout_s:g} s"
                )
            )
        self.transport.close()


def header_bounded(header_timeout_s: float) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)``, with this bound on a request head."""
    return type("HeaderBoundedProtocol", (_HeaderBoundedProtocol,), {"header_timeout_s": header_timeout_s})


class BodyDeadline:
    """ASGI middleware: a request body must arrive within ``timeout_s`` plus one second per
    ``min_rate`` bytes received so far; else 408, and the connection is closed."""

    def __init__(self, app: ASGIApp, timeout_s: float, min_rate: float) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        received = 0
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # afterwards the app waits for a disconnect, as long as it needs
                return await receive()
            deadline = started + self.timeout_s + received / self.min_rate
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the body did not arrive in time: at least {self.min_rate:g} bytes per second "
                    f"after the first {self.timeout_s:g} s (received {received} bytes)",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, bounded_receive, send)
