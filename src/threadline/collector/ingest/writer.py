"""The store writer: one thread owns every write, and small requests share inserts.

Ingest requests hand their events and spans to ``Writer.submit`` and wait. The writer takes
everything that arrived within a short window (bounded in time and size), stores it with as few
inserts as possible, and only then answers each request: nothing is acknowledged before the store
has it. When more events wait than ``max_pending_events``, new requests are refused at once
(``Overloaded``, answered 503 with Retry-After) instead of growing memory without bound.

An insert has a fixed cost beside its rows' (about 60 ms in the embedded engine, its views
included), so 4,000 rows insert two to three times faster per row than 1,000. Requests whose events
are still being checked (``arriving``) are therefore waited for, a little, before a write begins.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..metrics import Metrics
from ..schema import BusinessEvent
from ..storage import Store
from ..storage.writes import KeyRules, store_events, store_spans

logger = logging.getLogger("threadline.collector")


# How long a write about to begin waits for requests being checked (``Writer.arriving``): about
# what checking 1,000 events takes on a busy core.
GATHER_S = 0.1


class Overloaded(RuntimeError):
    """Too much is waiting for the store; the sender should retry later."""


@dataclass(frozen=True)
class WriteResult:
    accepted: int
    duplicates: int


@dataclass
class _Job:
    tenant: str
    source: str
    events: Sequence[BusinessEvent]
    spans: Sequence[Mapping[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[WriteResult]
    rules: KeyRules
    new: list[bool] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.events) + len(self.spans)


class Arrival:
    """A request whose events are on their way to ``Writer.submit`` (being decoded and checked)."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._on_its_way = True

    def here(self) -> None:
        """Submitted, refused or gone: no longer waited for. The caller holds the writer's lock."""
        if self._on_its_way:
            self._on_its_way = False
            self._writer._arriving -= 1
            self._writer._wake.notify()


class Writer:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        window_s: float = 0.005,
        max_batch_events: int = 20_000,
        max_pending_events: int = 200_000,
        gather_s: float = GATHER_S,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.window_s = window_s
        self.max_batch_events = max_batch_events
        self.max_pending_events = max_pending_events
        self.gather_s = gather_s
        self._jobs: deque[_Job] = deque()
        self._pending = 0
        self._arriving = 0  # requests being checked (``arriving``) that a write may wait for
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="threadline-store-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=30)

    @contextmanager
    def arriving(self) -> Iterator[Arrival]:
        """Around decoding and checking a request's events, before ``submit(..., arrival=)``: a
        write about to begin waits for it (at most ``gather_s``) so that the two share an insert."""
        with self._wake:
            self._arriving += 1
            arrival = Arrival(self)
        try:
            yield arrival
        finally:
            with self._wake:
                arrival.here()

    async def submit(
        self,
        tenant: str,
        source: str,
        events: Sequence[BusinessEvent],
        spans: Sequence[Mapping[str, Any]] = (),
        rules: KeyRules | None = None,
        arrival: Arrival | None = None,
    ) -> WriteResult:
        """Store events and spans, their keys linked by ``rules`` (from the workflow definitions);
        returns once they are stored. Raises Overloaded or StoreUnavailable."""
        loop = asyncio.get_running_loop()
        job = _Job(tenant, source, events, spans, loop, loop.create_future(), rules or KeyRules())
        size = job.size
        with self._wake:
            if arrival is not None:
                arrival.here()
            if self._stopping:
                raise Overloaded("the collector is shutting down")
            if self._pending and self._pending + size > self.max_pending_events:
                raise Overloaded(f"{self._pending} events are waiting for the store")
            self._jobs.append(job)
            self._pending += size
            self.metrics.pending_events.set(self._pending)
            self._wake.notify()
        return await job.future

    def _take_batch(self) -> list[_Job]:
        with self._wake:
            while not self._jobs and not self._stopping:
                self._wake.wait()
            if not self._jobs:
                return []
            deadline = time.monotonic() + self.gather_s
            while self._arriving and not self._stopping and self._pending < self.max_batch_events:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
        time.sleep(self.window_s)  # let concurrent requests join this insert
        batch: list[_Job] = []
        size = 0
        with self._wake:
            while self._jobs and (not batch or size + self._jobs[0].size <= self.max_batch_events):
                job = self._jobs.popleft()
                batch.append(job)
                size += job.size
            self._pending -= size
            self.metrics.pending_events.set(self._pending)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            started = time.perf_counter()
            try:
                with self.store.writing():  # before any read waiting for the store
                    self._write(batch)
            except Exception as error:  # answered per request (503 or 500); the writer lives on
                for job in batch:
                    job.loop.call_soon_threadsafe(_set_exception, job.future, error)
                continue
            finally:
                self.metrics.insert_seconds.observe(time.perf_counter() - started)
            for job in batch:
                duplicates = job.new.count(False)
                result = WriteResult(accepted=len(job.new) - duplicates, duplicates=duplicates)
                job.loop.call_soon_threadsafe(_set_result, job.future, result)

    def _write(self, batch: list[_Job]) -> None:
        groups: dict[tuple[str, str], list[_Job]] = defaultdict(list)
        for job in batch:
            groups[job.tenant, job.source].append(job)
        for (tenant, source), jobs in groups.items():
            events = [event for job in jobs for event in job.events]
            if events:
                # the definitions current when the last request of the group arrived
                stored = store_events(self.store, tenant, events, source, jobs[-1].rules)
                self.metrics.transactions_linked.inc(stored.linked)
                self.metrics.alias_conflicts.inc(stored.alias_conflicts)
                offset = 0
                for job in jobs:
                    job.new = stored.new[offset : offset + len(job.events)]
                    offset += len(job.events)
            spans = [span for job in jobs for span in job.spans]
            if spans:
                self.metrics.spans_stored.inc(store_spans(self.store, spans))


def _set_result(future: asyncio.Future[WriteResult], result: WriteResult) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[WriteResult], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
