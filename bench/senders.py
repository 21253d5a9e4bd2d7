"""Load generators run as separate processes; they import nothing of Threadline's server side."""

from __future__ import annotations

from multiprocessing.synchronize import Event

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


def export_spans(url: str, count: int, ready: Event, go: Event) -> None:
    """Business spans through the official OpenTelemetry OTLP/HTTP exporter (protobuf)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
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
            "threadline.correlation_id": f"OT-{n // 4}",
            "threadline.workflow": "quote-to-cash",
            "threadline.event_id": f"ot-{n}",
        }
        tracer.start_span(steps[n % 4], attributes=attributes).end()
    spans = collected.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=120)
    ready.set()
    go.wait()
    for start in range(0, len(spans), 1000):  # what a BatchSpanProcessor does, minus its timer
        exporter.export(spans[start : start + 1000])
