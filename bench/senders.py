"""Load generators run as separate processes; they import nothing of Threadline's server side."""

from __future__ import annotations

from multiprocessing.synchronize import Event
from typing import Any

import httpx


def post_batches(url: str, batches: list[bytes], ready: Event, go: Event) -> None:
    with httpx.Client(timeout=120) as client:
        client.get(url + "/healthz").raise_for_status()  # connect before the clock starts
        ready.set()
        go.wait()
        for body in batches:
            response = client.post(
                url + "/v1/events", content=body, headers={"content-type": "application/json"}
            )
            response.raise_for_status()


# What a realistic trace has around each business step: the calls an integration makes.
TECHNICAL_SPANS: tuple[tuple[str, dict[str, str | int]], ...] = (
    ("HTTP GET", {"http.request.method": "GET", "url.path": "/api/customers/42", "http.status": 200}),
    ("HTTP POST", {"http.request.method": "POST", "url.path": "/api/orders", "http.status": 201}),
    ("SELECT orders", {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM orders"}),
    ("UPDATE orders", {"db.system.name": "postgresql", "db.query.text": "UPDATE orders SET state = $1"}),
    ("queue publish", {"messaging.system": "kafka", "messaging.destination.name": "orders"}),
)


def traced_spans(count: int, prefix: str, children: int = 0) -> list[Any]:
    """``count`` business spans of quote-to-cash steps, each the parent of ``children`` technical
    spans (``TECHNICAL_SPANS`` in turn), finished and ready to export in the order they ended."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    collected = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("bench")
    steps = ["crm.opportunity.won", "erp.customer.validated", "cpq.quote.approved", "erp.order.created"]
    for n in range(count):
        attributes = {
            "threadline.correlation_id": f"{prefix}-{n // 4}",
            "threadline.workflow": "quote-to-cash",
            "threadline.event_id": f"{prefix.lower()}-{n}",
        }
        step = tracer.start_span(steps[n % 4], attributes=attributes)
        within = trace.set_span_in_context(step)
        for c in range(children):
            name, technical = TECHNICAL_SPANS[c % len(TECHNICAL_SPANS)]
            tracer.start_span(name, context=within, attributes=technical).end()
        step.end()
    return list(collected.get_finished_spans())


def export_spans(url: str, count: int, children: int, prefix: str, ready: Event, go: Event) -> None:
    """Business spans (each with ``children`` technical ones) through the official OpenTelemetry
    OTLP/HTTP exporter (protobuf), 1,000 spans a request."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans = traced_spans(count, prefix, children)
    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=120)
    ready.set()
    go.wait()
    for start in range(0, len(spans), 1000):  # what a BatchSpanProcessor does, minus its timer
        exporter.export(spans[start : start + 1000])
