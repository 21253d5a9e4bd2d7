"""Spooled batches are standard OTLP requests that decode back to the spans that were encoded."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from threadline.sdk import _otlp


def finished_spans() -> list:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "erp-sync", "deployment": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test", "1.0")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("threadline.amount", 12.5)
        with tracer.start_as_current_span(
            "child", attributes={"tags": ("a", "b"), "n": 3, "ok": True}
        ) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(StatusCode.ERROR, "ERP said no")
    return list(exporter.get_finished_spans())


def test_decoding_an_encoded_batch_gives_back_the_same_request() -> None:
    spans = finished_spans()
    payload = _otlp.encode(spans)
    decoded = _otlp.decode(payload)
    assert _otlp.encode(decoded) == payload
    child = next(span for span in decoded if span.name == "child")
    assert child.attributes == {"tags": ("a", "b"), "n": 3, "ok": True}
    assert child.status.status_code is StatusCode.ERROR
    assert child.parent is not None and child.parent.span_id == spans[1].context.span_id


def test_a_corrupt_payload_is_an_error_not_garbage() -> None:
    with pytest.raises(DecodeError):
        _otlp.decode(b"\xff\xff\xff\xff")
