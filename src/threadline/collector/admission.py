"""Reads admitted per tenant, so that one tenant's many slow calls cannot slow another's.

Each tenant (an API key's, or the one anonymous tenant without keys) has at most
``reads_per_tenant`` API calls running and ``reads_waiting_per_tenant`` more waiting for a turn,
and makes at most ``reads_per_second`` calls a second (ten seconds' worth in a burst); beyond either
a call is refused at once with 429 and ``Retry-After`` instead of queueing without bound. A shared
answer (``shared_reads``) costs nothing and is not counted. An admitted call's reads are made for
its caller: when the HTTP client disconnects, a read still waiting for the store is dropped and, on
a ClickHouse server, a running one is cancelled.

Declared once per read router: ``dependencies=[Depends(require("read")), Depends(admit_read)]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from .auth import RateLimiter
from .http_errors import ApiError
from .storage import ReadCaller, Store

# How often an admitted call looks whether its HTTP client has gone.
DISCONNECT_CHECK_S = 0.1
RETRY_AFTER_S = 1


@dataclass
class _Tenant:
    running: asyncio.Semaphore
    rate: RateLimiter | None
    waiting: int = 0


@dataclass
class ReadAdmission:
    """Per tenant: a semaphore of running calls, and a count of the calls waiting on it.

    Used from the event loop only, so no lock is needed around the counts.
    """

    reads_per_tenant: int
    reads_waiting_per_tenant: int
    reads_per_second: float = 0.0  # 0: no rate limit
    _tenants: dict[str, _Tenant] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def admitted(self, tenant: str) -> AsyncIterator[None]:
        """Hold one of the tenant's running places; 429 when too many of its calls already wait."""
        state = self._tenants.get(tenant)
        if state is None:
            rate = RateLimiter(self.reads_per_second) if self.reads_per_second > 0 else None
            state = self._tenants[tenant] = _Tenant(asyncio.Semaphore(self.reads_per_tenant), rate)
        wait = state.rate.take(1) if state.rate is not None else 0.0
        if wait > 0:
            raise ApiError(
                429,
                "too_many_reads",
                f"this tenant made more than {self.reads_per_second:g} queries a second; "
                f"retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if state.running.locked():
            if state.waiting >= self.reads_waiting_per_tenant:
                raise ApiError(
                    429,
                    "too_many_reads",
                    f"this tenant already has {self.reads_per_tenant} queries running and "
                    f"{state.waiting} waiting; retry when some have answered",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            state.waiting += 1
            try:
                await state.running.acquire()
            finally:
                state.waiting -= 1
        else:
            await state.running.acquire()
        try:
            yield
        finally:
            state.running.release()


class Admitting(Protocol):
    """What admission uses of the collector (``service.Collector``, which holds a ReadAdmission)."""

    reads: ReadAdmission
    store: Store

    def tenant_of(self, request: Request) -> str: ...


async def _watch(request: Request, collector: Admitting, caller: ReadCaller) -> None:
    """Mark the caller gone once its HTTP client disconnects, and cancel its running read."""
    while not await request.is_disconnected():
        await asyncio.sleep(DISCONNECT_CHECK_S)
    caller.gone.set()
    await run_in_threadpool(collector.store.cancel, caller)


async def admit_read(request: Request) -> AsyncIterator[None]:
    """A FastAPI dependency (after ``require``, which names the tenant): admit, then watch the caller."""
    collector: Admitting = request.app.state.collector
    tenant = collector.tenant_of(request)
    async with collector.reads.admitted(tenant):
        caller = ReadCaller(tenant)
        collector.store.reading(caller)  # this request's context: the reads its handler makes
        watcher = asyncio.create_task(_watch(request, collector, caller))
        try:
            yield
        finally:
            watcher.cancel()
