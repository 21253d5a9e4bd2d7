"""Cost of ``sdk.event()`` to its caller, against a bare OpenTelemetry span with the same attributes.

Both sides export over OTLP/HTTP to the same local sink on a background thread (the baseline with the
SDK's BatchSpanProcessor), so the figure is what the integration's own thread pays per event.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.util.types import AnyValue

from bench.otlp_sink import start_sink
from bench.report import Figure
from threadline import sdk

ATTRIBUTES = {"region": "emea", "order_type": "standard"}
QUEUE_SIZE = 8192  # the SDK's default queue (THREADLINE_QUEUE_SIZE), and the baseline's
GOAL_RATIO = 0.5  # issue 17: the caller only records the call; checks and the span are built off its thread


def _per_call_ns(emit: Callable[[int], None], count: int) -> float:
    started = time.perf_counter_ns()
    for n in range(count):
        emit(n)
    return (time.perf_counter_ns() - started) / count


def run(scale: str) -> list[Figure]:
    # A round stays below both queues' size (8192 spans), so neither side overflows: past it the
    # bare processor drops spans (cheap) while the SDK spools them to disk, which is not the same work.
    count, rounds = (5_000, 5) if scale == "small" else (5_000, 15)
    endpoint, sink = start_sink()

    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    processor = BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint + "/v1/traces"), max_queue_size=QUEUE_SIZE
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def bare(n: int) -> None:
        attributes: dict[str, AnyValue] = {
            "threadline.correlation_id": f"ORD-{n}",
            "threadline.workflow": "quote-to-cash",
            "threadline.step": "erp.order.created",
            "threadline.system": "netsuite",
            "threadline.status": "ok",
            "threadline.event_id": f"evt-{n}",
            "threadline.amount": 120.0,
            "threadline.currency": "USD",
            **ATTRIBUTES,
        }
        tracer.start_span("erp.order.created", attributes=attributes).end()

    def threadline_event(n: int) -> None:
        sdk.event(
            "quote-to-cash",
            "erp.order.created",
            correlation_id=f"ORD-{n}",
            amount=120.0,
            currency="USD",
            attributes=ATTRIBUTES,
        )

    with tempfile.TemporaryDirectory() as spool:
        sdk.configure(service="bench", system="netsuite", endpoint=endpoint, spool_dir=spool)
        bare_ns, sdk_ns = [], []
        for _ in range(rounds):  # interleaved, so both sides see the same noise
            bare_ns.append(_per_call_ns(bare, count))
            processor.force_flush()
            sdk_ns.append(_per_call_ns(threadline_event, count))
            sdk.flush(30)
        sdk.shutdown()
    provider.shutdown()
    sink.shutdown()

    bare_median, sdk_median = statistics.median(bare_ns), statistics.median(sdk_ns)
    return [
        Figure(
            name="SDK event() cost per call",
            value=f"{sdk_median / 1000:.1f} µs",
            baseline=f"bare OTel span {bare_median / 1000:.1f} µs",
            ratio=sdk_median / bare_median,
            goal=f"<= {GOAL_RATIO}x",
            met=sdk_median / bare_median <= GOAL_RATIO,
        )
    ]
