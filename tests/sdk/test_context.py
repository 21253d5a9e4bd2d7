"""Correlation in context: W3C baggage across threads, asyncio tasks, queues and processes."""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.support.otlp_receiver import OtlpReceiver, free_port
from threadline import sdk

ROOT = Path(__file__).resolve().parents[2]


def correlation_in_context() -> str | None:
    return sdk.extract(sdk.inject({})).correlation_id


def test_correlate_puts_the_key_and_aliases_in_baggage_headers() -> None:
    with sdk.correlate("OPP-1042", **{"erp.sales_order": "SO-88812"}):
        headers = sdk.inject({})
    assert "threadline.correlation_id=OPP-1042" in headers["baggage"]
    assert "threadline.alias.erp.sales_order=SO-88812" in headers["baggage"]
    assert correlation_in_context() is None  # the block ended, so did the correlation


def test_extract_reads_headers_whatever_their_case_and_encoding() -> None:
    with sdk.correlate("ORD 7/ü", **{"billing.invoice": "INV-1"}):
        headers = sdk.inject({})
    as_http = {"Baggage": headers["baggage"]}
    as_kafka = {"baggage": headers["baggage"].encode()}
    for carrier in (as_http, as_kafka):
        found = sdk.extract(carrier)
        assert found.correlation_id == "ORD 7/ü"
        assert found.aliases == {"billing.invoice": "INV-1"}


def test_extract_of_headers_without_a_correlation_finds_none() -> None:
    assert sdk.extract({"content-type": "application/json"}).correlation_id is None


def test_correlations_nest_and_unwind() -> None:
    with sdk.correlate("OUTER"):
        with sdk.correlate("INNER"):
            assert correlation_in_context() == "INNER"
        assert correlation_in_context() == "OUTER"


def test_each_thread_keeps_its_own_correlation() -> None:
    seen: dict[str, str | None] = {}
    barrier = threading.Barrier(8)

    def work(key: str) -> None:
        with sdk.correlate(key):
            barrier.wait()  # all eight are inside their correlation at the same time
            time.sleep(0.01)
            seen[key] = correlation_in_context()

    threads = [threading.Thread(target=work, args=(f"ORD-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {f"ORD-{n}": f"ORD-{n}" for n in range(8)}


def test_a_worker_thread_continues_the_correlation_through_a_copied_context() -> None:
    result: list[str | None] = []
    with sdk.correlate("OPP-77"):
        snapshot = contextvars.copy_context()
    thread = threading.Thread(target=lambda: result.append(snapshot.run(correlation_in_context)))
    thread.start()
    thread.join()
    assert result == ["OPP-77"]


def test_asyncio_tasks_inherit_and_isolate_correlations() -> None:
    async def handle(key: str) -> tuple[str, str | None, str | None]:
        with sdk.correlate(key):
            child = await asyncio.create_task(asyncio.sleep(0.01, result=correlation_in_context()))
            await asyncio.sleep(0.01)
            return key, correlation_in_context(), child

    async def main() -> list[tuple[str, str | None, str | None]]:
        return await asyncio.gather(*(handle(f"CASE-{n}") for n in range(5)))

    for key, seen, in_child_task in asyncio.run(main()):
        assert seen == key
        assert in_child_task == key


def test_the_correlation_crosses_a_real_http_call_between_two_processes(
    receiver: OtlpReceiver, spool_dir: Path
) -> None:
    """This process calls the billing webhook (examples/webhook_handler.py) in another process."""
    port = free_port()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "THREADLINE_SPOOL_DIR": str(spool_dir / "webhook"),
    }
    handler = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "webhook_handler.py"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert handler.stdout is not None and "listening" in handler.stdout.readline()
        sdk.configure(service="erp-sync", system="netsuite", endpoint=receiver.endpoint, spool_dir=spool_dir)
        with (
            sdk.correlate("OPP-1042", **{"erp.sales_order": "SO-88812"}),
            sdk.step("quote-to-cash", "erp.order.created"),
        ):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/billing",
                data=b'{"subscription": "sub_42", "plan": "enterprise"}',
                headers=sdk.inject({"Content-Type": "application/json"}),
                method="POST",
            )
            assert urllib.request.urlopen(request, timeout=10).status == 204
        assert sdk.flush(10)
        events = {span.name: span for span in receiver.wait_for(2)}
    finally:
        handler.terminate()
        handler.wait(10)
        sdk.shutdown(2)

    upstream, downstream = events["erp.order.created"], events["billing.subscription.activated"]
    assert downstream.resource["service.name"] == "billing-webhooks"
    assert downstream.attributes["threadline.system"] == "stripe"
    assert downstream.attributes["threadline.correlation_id"] == "OPP-1042"
    assert downstream.attributes["threadline.alias.erp.sales_order"] == "SO-88812"
    assert downstream.attributes["threadline.alias.billing.subscription"] == "sub_42"
    # The W3C trace context went along: the webhook's event is a child of the caller's step.
    assert downstream.trace_id == upstream.trace_id
    assert downstream.parent_span_id == upstream.span_id


def test_the_queue_consumer_example_continues_the_transaction(
    receiver: OtlpReceiver, spool_dir: Path
) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "THREADLINE_SPOOL_DIR": str(spool_dir),
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "queue_consumer.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "events delivered" in run.stdout
    events = {span.name: span.attributes for span in receiver.business_events()}
    assert events["crm.opportunity.won"]["threadline.correlation_id"] == "OPP-1042"
    assert events["erp.order.created"]["threadline.correlation_id"] == "OPP-1042"
    assert events["erp.order.created"]["threadline.alias.erp.sales_order"] == "SO-1042"
