"""Delivery never hurts the caller and never loses an event: queue, backoff, spool, next process."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from threadline import sdk
from threadline.sdk._spool import Spool, span_count

EMIT_AND_EXIT = """
import sys
from threadline import sdk
sdk.configure(service="bulk-sync", system="sap")
for n in range(int(sys.argv[1])):
    sdk.event("quote-to-cash", "erp.order.created", correlation_id=f"ORD-{n}", event_id=f"evt-{n}")
"""  # no flush, no shutdown: the process just ends, as integrations do

FLUSH = """
from threadline import sdk
sdk.configure(service="bulk-sync", system="sap")
assert sdk.flush(60), "the spool was not drained"
"""


@pytest.fixture
def down_receiver() -> Iterator[OtlpReceiver]:
    """A receiver that is not listening yet: the collector is down until the test starts it."""
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


def run_python(program: str, receiver: OtlpReceiver, spool_dir: Path, *args: str) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "THREADLINE_SPOOL_DIR": str(spool_dir),
    }
    subprocess.run([sys.executable, "-c", program, *args], env=env, check=True, timeout=120)


def spooled_spans(spool_dir: Path) -> int:
    return sum(span_count(path) for path in Spool(spool_dir, 1 << 40).pending())


@pytest.mark.slow
def test_events_emitted_while_the_collector_is_down_are_delivered_by_the_next_process(
    down_receiver: OtlpReceiver, spool_dir: Path
) -> None:
    run_python(EMIT_AND_EXIT, down_receiver, spool_dir, "10000")
    assert spooled_spans(spool_dir) == 10_000  # all of them survived the process on disk

    down_receiver.start()
    run_python(FLUSH, down_receiver, spool_dir)

    events = down_receiver.business_events()
    assert {span.event_id for span in events} == {f"evt-{n}" for n in range(10_000)}
    assert len(events) == 10_000  # each sent once
    assert spooled_spans(spool_dir) == 0


def test_delivery_resumes_by_itself_when_the_collector_comes_back(
    down_receiver: OtlpReceiver, spool_dir
) -> None:
    sdk.configure(service="s", endpoint=down_receiver.endpoint, spool_dir=spool_dir)
    try:
        for n in range(20):
            sdk.event("renewal", "crm.renewal.opened", correlation_id=f"ACC-{n}")
        time.sleep(0.5)
        down_receiver.start()
        events = down_receiver.wait_for(20, timeout_s=30)  # no flush: the background thread retries
    finally:
        sdk.shutdown(2)
    assert len({span.event_id for span in events}) == 20


class GarbageCollections:
    """Seconds the interpreter spent collecting garbage, so far: a full collection after a thousand
    earlier tests can pause any thread for over half a second, and that is not the SDK's doing."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


# Long beside what a loaded machine can stall a thread for (0.6 s once in CI, with the delay at 1 s):
# a call that waited for the collector would take at least this long.
COLLECTOR_DELAY_S = 3.0


def slowest_call_behind_a_slow_collector(
    receiver: OtlpReceiver, spool_dir: Path, monkeypatch: pytest.MonkeyPatch, events: int = 2000
) -> float:
    """Send ``events`` with a queue of 50 while the collector takes ``COLLECTOR_DELAY_S`` per batch;
    the longest any ``sdk.event()`` call took, garbage collection left out. Every event must arrive
    once the collector is quick again."""
    monkeypatch.setenv("THREADLINE_QUEUE_SIZE", "50")
    receiver.delay_s = COLLECTOR_DELAY_S  # a slow collector: the queue fills while a batch is in flight
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    collections = GarbageCollections()
    gc.callbacks.append(collections)
    slowest = 0.0
    try:
        for n in range(events):
            started, collecting = time.perf_counter(), collections.seconds
            sdk.event("onboarding", "crm.account.created", correlation_id=f"ACC-{n}")
            call = time.perf_counter() - started - (collections.seconds - collecting)
            slowest = max(slowest, call)
        receiver.delay_s = 0.0
        assert sdk.flush(60)
    finally:
        gc.callbacks.remove(collections)
        sdk.shutdown(2)
    assert len({span.event_id for span in receiver.business_events()}) == events
    return slowest


def test_a_full_queue_spills_to_disk_without_blocking_or_losing(
    receiver: OtlpReceiver, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        slowest_call_behind_a_slow_collector(receiver, spool_dir, monkeypatch) < COLLECTOR_DELAY_S / 2
    )  # not on the collector


SLOW_WRITE_S = 1.0


def test_a_slow_disk_never_holds_up_the_caller_either(
    receiver: OtlpReceiver, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overflow is encoded and written by the SDK's spool thread, not by the thread that called."""
    write = Spool.write
    writers: list[str] = []

    def slow_write(spool: Spool, payload: bytes, spans: int) -> bool:
        writers.append(threading.current_thread().name)
        time.sleep(SLOW_WRITE_S)  # a disk under load
        return write(spool, payload, spans)

    monkeypatch.setattr(Spool, "write", slow_write)
    slowest = slowest_call_behind_a_slow_collector(receiver, spool_dir, monkeypatch)
    assert "threadline-spool" in writers  # the overflow did go to disk
    assert threading.current_thread().name not in writers
    # half a write: a busy machine may pause any call a few tenths of a second, never a whole write
    assert slowest < SLOW_WRITE_S / 2


def test_the_caller_never_waits_for_a_hanging_collector(receiver: OtlpReceiver, spool_dir: Path) -> None:
    receiver.delay_s = 3.0
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    try:
        started = time.perf_counter()
        for n in range(200):
            with sdk.step("quote-to-cash", "erp.order.created", f"ORD-{n}"):
                pass
        elapsed = time.perf_counter() - started
    finally:
        sdk.shutdown(0.5)  # gives up waiting and keeps what is left on disk
    assert elapsed < 1.5
    assert spooled_spans(spool_dir) + len(receiver.business_events()) >= 200


def test_retry_after_from_the_collector_is_honoured(receiver: OtlpReceiver, spool_dir: Path) -> None:
    receiver.unavailable_answers = 1
    receiver.retry_after_s = 3  # longer than the exporter's own timeout: the SDK's backoff must honour it
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    try:
        sdk.event("renewal", "billing.invoice.sent", correlation_id="ACC-1")
        assert receiver.wait_for(1, timeout_s=30)
    finally:
        sdk.shutdown(2)
    (refused_at, refused), (accepted_at, accepted) = receiver.requests[0], receiver.requests[-1]
    assert (refused, accepted) == (503, 200)
    assert accepted_at - refused_at >= 2.9


def test_the_spool_is_bounded_and_drops_the_oldest_with_a_logged_count(
    down_receiver: OtlpReceiver,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("THREADLINE_SPOOL_MAX_BYTES", "6000")
    monkeypatch.setenv("THREADLINE_EXPORT_TIMEOUT", "0.2")  # fail fast against the closed port
    sdk.configure(service="s", endpoint=down_receiver.endpoint, spool_dir=spool_dir)
    with caplog.at_level(logging.WARNING, logger="threadline.sdk"):
        for batch in range(10):
            for n in range(10):
                sdk.event(
                    "renewal",
                    "crm.renewal.opened",
                    correlation_id=f"ACC-{batch}-{n}",
                    event_id=f"{batch}-{n}",
                )
            assert not sdk.flush(0.5)  # the collector is down: this round becomes one spooled batch
        sdk.shutdown(2)

    assert sum(path.stat().st_size for path in Spool(spool_dir, 0).pending()) <= 6000
    assert any(
        "dropped 10 business events" in message and "over its limit" in message for message in caplog.messages
    )

    down_receiver.start()
    sdk.configure(service="s", endpoint=down_receiver.endpoint, spool_dir=spool_dir)
    try:
        assert sdk.flush(20)
    finally:
        sdk.shutdown(2)
    kept = {span.event_id for span in down_receiver.business_events()}
    assert "9-9" in kept  # the newest survived
    assert "0-0" not in kept  # the oldest went first


def test_a_corrupt_spool_file_is_skipped_and_reported(
    receiver: OtlpReceiver, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir.mkdir(parents=True)
    (spool_dir / "00000000000000000001-1-0-n5.otlp").write_bytes(b"\xff\xff not protobuf \x00\x01")
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    try:
        with caplog.at_level(logging.ERROR, logger="threadline.sdk"):
            sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-1")
            assert sdk.flush(10)
    finally:
        sdk.shutdown(2)
    assert len(receiver.business_events()) == 1
    assert (spool_dir / "corrupt" / "00000000000000000001-1-0-n5.otlp").exists()
    assert any("corrupt spool file" in message for message in caplog.messages)


def test_two_processes_never_send_the_same_spooled_batch_at_once(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1 << 20)
    assert spool.write(b"batch", spans=1)
    [path] = spool.pending()
    with spool.claim(path) as first:
        with Spool(spool_dir, 1 << 20).claim(path) as second:
            assert first == b"batch"
            assert second is None
        spool.done(path)
    assert spool.pending() == []


def test_flush_keeps_trying_until_the_collector_answers_or_its_time_is_up(
    down_receiver: OtlpReceiver, spool_dir: Path
) -> None:
    sdk.configure(service="s", endpoint=down_receiver.endpoint, spool_dir=spool_dir)
    try:
        sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-1")
        assert not sdk.flush(1)  # down all along: gives up when its time is up
        threading.Timer(2, down_receiver.start).start()
        assert sdk.flush(30)  # comes back while flush waits
    finally:
        sdk.shutdown(2)
    assert len(down_receiver.business_events()) == 1


def test_shutdown_sends_the_events_still_queued(receiver: OtlpReceiver, spool_dir: Path) -> None:
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    for n in range(300):
        sdk.event("renewal", "crm.renewal.opened", correlation_id=f"ACC-{n}", event_id=f"evt-{n}")
    sdk.shutdown(10)  # no flush before
    assert {span.event_id for span in receiver.business_events()} == {f"evt-{n}" for n in range(300)}


def test_events_recorded_just_before_the_process_ends_are_delivered(
    receiver: OtlpReceiver, spool_dir: Path
) -> None:
    run_python(EMIT_AND_EXIT, receiver, spool_dir, "300")
    assert {span.event_id for span in receiver.business_events()} == {f"evt-{n}" for n in range(300)}
    assert spooled_spans(spool_dir) == 0
