"""Background delivery: bounded queues, the official OTLP/HTTP exporter, backoff and the spool.

The caller's thread only appends to a deque: what it recorded of an ``sdk.event()`` call (checked and
built into a span later, on the delivery thread), or a finished span (a step). One daemon thread
builds the recorded calls, takes batches of spans and exports them; when the collector is
unreachable (or answers 429/503) the batch goes to the spool and the thread backs off
exponentially, honouring ``Retry-After``. While backing off, new batches go straight to the spool;
once the collector answers again the spool is drained. When the queue is full (the delivery thread is
held up by a slow collector) the overflow goes to a second thread, which encodes and writes it to
the spool: the caller never waits on the disk either.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import requests  # the HTTP stack of the OTLP exporter; a session lets us read Retry-After
from google.protobuf.message import DecodeError
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult

from . import _otlp
from ._settings import Settings
from ._spool import Spool

logger = logging.getLogger("threadline.sdk")

OVERFLOW_BATCH = 256  # spans the caller's threads collect before an overflow batch goes to disk
# Overflow batches waiting for the spool thread; beyond this the disk cannot keep up, and the caller's
# thread writes its batch itself: memory stays bounded (64 x 256 spans).
SPILLS_WAITING = 64
SPOOL_FILES_PER_ROUND = 8  # spooled batches sent per round, so live events are never held up long

Call = TypeVar("Call")  # what the caller's thread recorded; ``build`` turns it into finished spans
Item = TypeVar("Item")


def _take(queue: deque[Item], limit: int) -> list[Item]:
    batch: list[Item] = []
    while len(batch) < limit:
        try:
            batch.append(queue.popleft())
        except IndexError:
            break
    return batch


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class Delivery:
    """The official OTLP/HTTP span exporter, with a session that remembers the server's Retry-After."""

    def __init__(self, settings: Settings) -> None:
        self.retry_after: float | None = None
        session = requests.Session()
        session.hooks["response"].append(self._on_response)
        headers = {"authorization": f"Bearer {settings.api_key}"} if settings.api_key else None
        self._exporter = OTLPSpanExporter(
            endpoint=settings.endpoint, headers=headers, timeout=settings.export_timeout_s, session=session
        )

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code in (429, 503):
            self.retry_after = _retry_after_seconds(response.headers.get("Retry-After"))

    def send(self, spans: Sequence[ReadableSpan]) -> bool:
        self.retry_after = None
        try:
            return self._exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:  # the exporter should not raise; if it does, treat it as a failed delivery
            logger.exception("threadline: the OTLP exporter failed")
            return False

    def shutdown(self) -> None:
        try:
            self._exporter.shutdown()
        except Exception:
            logger.debug("threadline: exporter shutdown failed", exc_info=True)


class DeliveryProcessor(SpanProcessor, Generic[Call]):
    """Queues recorded calls and finished business spans, and delivers them from one background thread.

    ``build`` turns recorded calls into finished spans (which come back through ``on_end``); it runs
    on the delivery thread, and never raises.
    """

    def __init__(
        self,
        settings: Settings,
        build: Callable[[Sequence[Call]], None],
        delivery: Delivery | None = None,
    ) -> None:
        self.settings = settings
        self.spool = Spool(settings.spool_dir, settings.spool_max_bytes)
        self.delivered_spans = 0
        self._delivery = delivery or Delivery(settings)
        self._build = build
        self._calls: deque[Call] = deque()
        self._queue: deque[ReadableSpan] = deque()
        self._overflow: list[ReadableSpan] = []
        self._overflow_lock = threading.Lock()
        # Overflow batches for the spool thread: the caller's thread never encodes or writes them.
        self._spills: deque[list[ReadableSpan]] = deque()
        self._spill_wake = threading.Event()
        self._spilling = True
        self._inflight: Sequence[ReadableSpan] = ()
        self._wake = threading.Event()
        self._flush_requests: list[threading.Event] = []
        self._flush_lock = threading.Lock()
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="threadline-delivery", daemon=True)
        self._thread.start()
        self._spiller = threading.Thread(target=self._spill, name="threadline-spool", daemon=True)
        self._spiller.start()

    # --- the caller's side: never blocks on the network -------------------------------------

    def defer(self, call: Call) -> None:
        """Queue ``call`` to be built on the delivery thread."""
        calls = self._calls
        if len(calls) < self.settings.queue_size:
            calls.append(call)
            if len(calls) >= self.settings.batch_size and not self._wake.is_set():
                self._wake.set()
            return
        # Queue full (the delivery thread is held up): build it here, as before calls were deferred;
        # its span then spills to disk with the other overflow.
        self._build([call])

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if len(self._queue) < self.settings.queue_size:
            self._queue.append(span)
            if len(self._queue) >= self.settings.batch_size:
                self._wake.set()
            return
        with self._overflow_lock:  # queue full: collect, then write to disk in one batch
            self._overflow.append(span)
            if len(self._overflow) < OVERFLOW_BATCH:
                return
            batch, self._overflow = self._overflow, []
        if len(self._spills) < SPILLS_WAITING:
            self._spills.append(batch)
            self._spill_wake.set()
        else:
            self._spool(batch)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.flush(timeout_millis / 1000)

    def flush(self, timeout_s: float) -> bool:
        """Deliver what is queued and what is spooled, retrying (with backoff) until ``timeout_s``.

        True once all of it reached the collector; False if the time ran out first.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            if self._flush_round(deadline - time.monotonic()) and self._all_delivered():
                return True
            # The round failed: wait as the backoff says (or until the deadline), then try again.
            pause = min(max(self._retry_at - time.monotonic(), 0.05), deadline - time.monotonic())
            if pause <= 0:
                return False
            time.sleep(pause)

    def _all_delivered(self) -> bool:
        return (
            not self._calls
            and not self._queue
            and not self._inflight
            and not self._spills
            and not self.spool.pending()
        )

    def _flush_round(self, timeout_s: float) -> bool:
        """One delivery round of everything queued and spooled, now; False if it did not finish in time."""
        done = threading.Event()
        with self._flush_lock:
            self._flush_requests.append(done)
        self._wake.set()
        return done.wait(max(timeout_s, 0.0))

    def shutdown(self, timeout_s: float | None = None) -> None:
        timeout_s = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        self._stopping = True
        # One round only: at exit an unreachable collector must not hold the process for long;
        # what is not delivered now is on disk for the next process.
        finished = self._flush_round(timeout_s) and self._all_delivered()
        self._spilling = False  # the spool thread writes what waits, then ends
        self._spill_wake.set()
        self._spiller.join(timeout=max(timeout_s, 0.5))
        if self._thread.is_alive() and not finished:
            # The worker is stuck on the network: keep what it holds on disk. The collector
            # deduplicates by event_id should the in-flight batch still arrive.
            self._build(_take(self._calls, len(self._calls)))  # their spans join the queue
            leftover = list(self._inflight) + _take(self._queue, len(self._queue))
            with self._overflow_lock:
                leftover += self._overflow
                self._overflow = []
            if leftover:
                self._spool(leftover)
        self._delivery.shutdown()
        self._thread.join(timeout=0.5)

    # --- the worker ---------------------------------------------------------------------------

    def _spill(self) -> None:
        """The spool thread: writes the caller's overflow batches to disk, oldest first."""
        while True:
            self._spill_wake.wait()
            self._spill_wake.clear()
            while self._spills:
                try:
                    self._spool(self._spills[0])  # left in the queue until on disk: flush waits for it
                except Exception:  # the thread must survive anything
                    logger.exception("threadline: spooling an overflow batch failed")
                self._spills.popleft()
            if not self._spilling:
                return

    def _spool(self, spans: Sequence[ReadableSpan]) -> None:
        try:
            payload = _otlp.encode(spans)
        except Exception as error:
            self.spool._count_drop(len(spans), f"encoding failed: {error}")
            return
        self.spool.write(payload, len(spans))

    def _run(self) -> None:
        while True:
            self._wake.wait(self.settings.schedule_delay_s)
            self._wake.clear()
            with self._flush_lock:
                flushes, self._flush_requests = self._flush_requests, []
            try:
                self._round(flushing=bool(flushes))
            except Exception:  # the worker must survive anything
                logger.exception("threadline: delivery round failed")
            for done in flushes:
                done.set()
            if self._stopping and flushes:
                return

    def _round(self, flushing: bool) -> None:
        if flushing:
            self._retry_at = 0.0  # an explicit flush tries the collector now
        with self._overflow_lock:
            overflow, self._overflow = self._overflow, []
        if overflow:
            self._spool(overflow)
        while self._calls or self._queue:
            self._build(_take(self._calls, self.settings.batch_size))
            if self._queue:
                self._deliver(_take(self._queue, self.settings.batch_size))
        self._drain_spool(limit=None if flushing else SPOOL_FILES_PER_ROUND)

    def _backing_off(self) -> bool:
        return time.monotonic() < self._retry_at

    def _deliver(self, batch: list[ReadableSpan]) -> None:
        if self._backing_off():
            self._spool(batch)
            return
        self._inflight = batch
        delivered = self._delivery.send(batch)
        self._inflight = ()
        if delivered:
            self._succeeded(len(batch))
        else:
            self._spool(batch)
            self._failed()

    def _drain_spool(self, limit: int | None) -> None:
        for sent, path in enumerate(self.spool.pending()):
            if self._backing_off() or (limit is not None and sent >= limit):
                return
            self._send_spooled(path)

    def _send_spooled(self, path: Path) -> None:
        with self.spool.claim(path) as payload:
            if payload is None:
                return
            try:
                spans = _otlp.decode(payload)
            except (DecodeError, ValueError) as error:
                self.spool.quarantine(path, str(error) or type(error).__name__)
                return
            if self._delivery.send(spans):
                self.spool.done(path)
                self._succeeded(len(spans))
            else:
                self._failed()

    def _succeeded(self, spans: int) -> None:
        self.delivered_spans += spans
        if self._backoff_s:
            logger.info("threadline: the collector answers again")
        self._backoff_s = 0.0
        self._retry_at = 0.0

    def _failed(self) -> None:
        self._backoff_s = min(max(self._backoff_s * 2, 1.0), self.settings.max_backoff_s)
        wait = self._delivery.retry_after
        if wait is None:
            wait = self._backoff_s * random.uniform(0.8, 1.2)
        self._retry_at = time.monotonic() + wait
        logger.warning(
            "threadline: the collector is unreachable; events are spooled, next try in %.1fs", wait
        )
