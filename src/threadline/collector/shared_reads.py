"""Expensive answers shared between the callers asking the same thing (ASGI middleware).

At millions of events an overview or a queue page costs the store seconds, and five people with
the dashboard open ask for the same page every 30 s: without sharing, the store spends all its time
answering the same question and every answer comes late. So, for ``GET /api/...``:

- identical calls made while one is being answered wait for that answer instead of asking the store
  again (same path, query and credentials: one key's answer is never served to another);
- an answer whose statements took at least ``min_cost_s`` of store time
  (``THREADLINE_SHARED_READ_MIN_SECONDS``, 1 s; executing, not waiting for the store) is kept for
  ``ttl_s`` (``THREADLINE_SHARED_READ_SECONDS``, 30 s; 0 turns sharing off) and served
  to the same call meanwhile; one older than that, but less than ``STALE_FACTOR`` times it, is
  served once more while a fresh one is computed in the background. A cheap answer is never kept:
  on a small store every call is answered afresh;
- a successful write through the API (an operator's resolve, reopen or acknowledgement; a reload)
  drops every kept answer, so whoever acted sees what they did: an answer still being computed when
  the write succeeded is neither kept nor shared with a call made after it. Ingest does not: under a steady
  flow of events nothing would ever be shared, and the answers' age bounds how late they are.

An answer about one transaction (``/api/transactions/<key>``: its detail, its trace) is never kept:
it reads one transaction's rows, and whoever opens a transaction must see the event that just
arrived (a kept answer of a slow lookup once showed a sales order without the alias that had joined
it). Identical calls in flight still share it.

A shared answer says so: ``Age`` (seconds since it was computed, RFC 9111) and
``X-Threadline-Shared: fresh | kept | stale``. Only 200 answers are kept or shared.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from .http_errors import ApiError
from .storage import Store

logger = logging.getLogger("threadline.collector")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STALE_FACTOR = 2  # an answer up to this many times its ttl old is served while a fresh one is made
MAX_KEPT = 256  # answers kept at most (the least recently used leave first)
SHARED_PREFIX = "/api/"
NEVER_KEPT_PREFIX = "/api/transactions/"  # one transaction's answers
READ_METHODS = ("GET", "HEAD", "OPTIONS")
CREDENTIAL_HEADERS = (b"authorization", b"cookie")


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    computed_at: float = field(default_factory=time.monotonic)

    def age(self) -> float:
        return time.monotonic() - self.computed_at


class SharedReads:
    def __init__(self, app: ASGIApp, ttl_s: float, min_cost_s: float) -> None:
        self.app = app
        self.ttl_s = ttl_s
        self.min_cost_s = min_cost_s
        self._kept: OrderedDict[bytes, Answer] = OrderedDict()
        self._asking: dict[bytes, tuple[int, asyncio.Future[Answer | None]]] = {}
        self._refreshing: set[bytes] = set()
        self._writes = 0  # successful writes so far: an answer begun before one is out of date

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.ttl_s <= 0:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in READ_METHODS and scope["path"].startswith(SHARED_PREFIX):
            await self.app(scope, receive, self._dropping_on_success(send))  # an operator acted
            return
        if scope["method"] != "GET" or not scope["path"].startswith(SHARED_PREFIX):
            await self.app(scope, receive, send)
            return
        key = _key(scope)
        if not _credentials_valid(scope):  # a key revoked since: it gets its 401 from the routes
            await self.app(scope, receive, send)
            return
        kept = self._kept.get(key)
        if kept is not None and kept.age() < self.ttl_s:
            self._kept.move_to_end(key)
            await _replay(kept, send, "kept")
            return
        if kept is not None and kept.age() < self.ttl_s * STALE_FACTOR:
            if key not in self._refreshing:
                self._refreshing.add(key)
                task = asyncio.create_task(self._refresh(key, dict(scope)))
                task.add_done_callback(lambda _: self._refreshing.discard(key))
            await _replay(kept, send, "stale")
            return
        asking = self._asking.get(key)
        if asking is not None and asking[0] == self._writes:
            answer = await asyncio.shield(asking[1])
            if answer is not None:
                await _replay(answer, send, "fresh")
                return
        await self._ask(key, scope, receive, send)

    async def _ask(self, key: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer this call from the application, and share the answer with those asking meanwhile."""
        asking: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        writes = self._writes
        self._asking[key] = (writes, asking)
        answer: Answer | None = None
        try:
            answer = await self._answer(key, scope, receive)
        finally:
            if self._asking.get(key) == (writes, asking):
                del self._asking[key]
            shared = answer if answer is not None and answer.status == 200 else None
            asking.set_result(shared)  # a failed answer is not shared: the others ask for themselves
        if answer is not None:
            await _replay(answer, send, None)

    async def _answer(self, key: bytes, scope: Scope, receive: Receive) -> Answer:
        status, headers, chunks = 500, [], []
        writes = self._writes

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        with Store.timed() as spent:  # what computing it cost the store, not how long it queued
            await self.app(scope, receive, capture)
        answer = Answer(status, headers, b"".join(chunks))
        keepable = not scope["path"].startswith(NEVER_KEPT_PREFIX)
        if keepable and status == 200 and spent.seconds >= self.min_cost_s and writes == self._writes:
            self._keep(key, answer)
        return answer

    async def _refresh(self, key: bytes, scope: Scope) -> None:
        """Ask again for a stale answer, nobody waiting on it (a failure keeps the stale one)."""

        async def nobody_leaves() -> Message:
            if not sent_request:
                sent_request.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # never disconnects: the answer is for whoever comes next
            raise AssertionError("unreachable")

        sent_request: list[bool] = []
        try:
            await self._answer(key, scope, nobody_leaves)
        except Exception:  # the stale answer stays until it is too old; the next call asks itself
            logger.exception("threadline: refreshing a shared answer of %s failed", scope["path"])

    def _keep(self, key: bytes, answer: Answer) -> None:
        self._kept[key] = answer
        self._kept.move_to_end(key)
        while len(self._kept) > MAX_KEPT:
            self._kept.popitem(last=False)

    def _dropping_on_success(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                self._writes += 1  # something changed: whoever acted must see it
                self._kept.clear()
            await send(message)

        return sending


def _credentials_valid(scope: Scope) -> bool:
    """Whether the call's key is one the collector knows now (keys can be reloaded)."""
    collector = getattr(scope["app"].state, "collector", None)
    if collector is None:
        return False
    headers = {name.lower(): value for name, value in scope.get("headers", [])}
    authorization = headers.get(b"authorization")
    try:
        collector.keys.authenticate(authorization.decode("latin-1") if authorization else None)
    except ApiError:  # 401: an unknown key is never served a shared answer
        return False
    return True


def _key(scope: Scope) -> bytes:
    """The call: path, query and the caller's credentials (hashed, never kept in clear)."""
    digest = hashlib.sha256(scope["path"].encode())
    digest.update(b"?" + scope.get("query_string", b""))
    for name, value in scope.get("headers", []):
        if name.lower() in CREDENTIAL_HEADERS:
            digest.update(b"\x00" + name.lower() + b"=" + value)
    return digest.digest()


async def _replay(answer: Answer, send: Send, shared: str | None) -> None:
    headers = list(answer.headers)
    if shared is not None:
        headers += [(b"age", str(int(answer.age())).encode()), (b"x-threadline-shared", shared.encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})
