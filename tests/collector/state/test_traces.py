"""``GET /api/traces/{trace_id}``: each technical span as the integration sent it.

Attribute values keep their OpenTelemetry type; span events (exceptions among them), links, the
resource and the instrumentation scope come back with the span; personal data is redacted by the
same rules wherever in the span it was sent. Sent by the official SDK and OTLP/HTTP exporter to
a real collector process.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Link, Span
from opentelemetry.util.types import AnyValue

from tests.collector.ingest.test_ingest_otlp import RecordingExporter
from tests.support.collector_process import CollectorProcess
from threadline.contract.redaction import Redactor

CHECKSUM = b"\x00\xffsum"
ATTRIBUTES: dict[str, AnyValue] = {
    "http.request.method": "POST",
    "http.response.status_code": 201,
    "erp.retry": False,
    "erp.latency_budget_s": 1.5,
    "erp.line_numbers": [1, 2, 3],
    "erp.skus": ["A-1", "B-2"],
    "erp.flags": [True, False],
    "erp.weights": [0.5, 1.0],
    "erp.order": {"id": "SO-88812", "lines": 3, "rush": True},
    "erp.checksum": CHECKSUM,
}
EVENT_TIME = dt.datetime(2026, 11, 2, 9, 30, 0, 123456, tzinfo=dt.UTC)

Exporting = Callable[[dict[str, Any]], tuple[TracerProvider, RecordingExporter]]


def as_json(value: Any) -> str:
    """JSON text tells 201 from 201.0 and "201", and True from 1: what "typed" means here."""
    return json.dumps(value, sort_keys=True)


def trace_id_of(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def span_id_of(span: Span) -> str:
    return format(span.get_span_context().span_id, "016x")


@pytest.fixture
def exporting(live_collector: CollectorProcess) -> Iterator[Exporting]:
    """A tracer provider of the given resource exporting each span to the collector as it ends."""
    providers: list[TracerProvider] = []

    def make(resource: dict[str, Any]) -> tuple[TracerProvider, RecordingExporter]:
        exporter = RecordingExporter(endpoint=live_collector.url + "/v1/traces", timeout=10)
        provider = TracerProvider(resource=Resource.create(resource))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return provider, exporter

    yield make
    for provider in providers:
        provider.shutdown()


def stored_spans(http: httpx.Client, trace_id: str) -> dict[str, dict[str, Any]]:
    response = http.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    return {span["name"]: span for span in response.json()["spans"]}


def test_a_span_comes_back_typed_with_its_events_links_resource_and_scope(
    http: httpx.Client, exporting: Exporting
) -> None:
    provider, exporter = exporting({"service.name": "netsuite", "host.cpu_count": 4})
    tracer = provider.get_tracer("netsuite.connector", "2.4.1", attributes={"vendor": "acme"})
    with tracer.start_as_current_span("poll.orders") as upstream:
        pass
    with tracer.start_as_current_span(
        "POST /salesOrder",
        attributes=ATTRIBUTES,
        links=[Link(upstream.get_span_context(), {"link.reason": "retry-of", "attempt": 2})],
    ) as span:
        span.add_event(
            "order.validated",
            {"lines": 3, "total": 48000.5, "backordered": False},
            timestamp=int(EVENT_TIME.timestamp()) * 10**9 + EVENT_TIME.microsecond * 1000,
        )
        try:
            raise ValueError("credit limit exceeded")
        except ValueError as error:
            span.record_exception(error)
    provider.shutdown()

    assert exporter.results == [SpanExportResult.SUCCESS, SpanExportResult.SUCCESS]
    stored = stored_spans(http, trace_id_of(span))["POST /salesOrder"]
    sent = {**ATTRIBUTES, "erp.checksum": base64.b64encode(CHECKSUM).decode()}
    assert as_json(stored["attributes"]) == as_json(sent)
    validated, exception = stored["events"]
    assert validated["name"] == "order.validated"
    assert dt.datetime.fromisoformat(validated["time"]) == EVENT_TIME
    assert as_json(validated["attributes"]) == as_json({"lines": 3, "total": 48000.5, "backordered": False})
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "ValueError"
    assert exception["attributes"]["exception.message"] == "credit limit exceeded"
    assert 'raise ValueError("credit limit exceeded")' in exception["attributes"]["exception.stacktrace"]
    assert stored["links"] == [
        {
            "trace_id": trace_id_of(upstream),
            "span_id": span_id_of(upstream),
            "attributes": {"link.reason": "retry-of", "attempt": 2},
        }
    ]
    assert as_json(stored["resource"]["host.cpu_count"]) == "4"
    assert stored["resource"]["service.name"] == "netsuite"
    assert stored["resource"]["telemetry.sdk.language"] == "python"
    assert stored["scope"] == {
        "name": "netsuite.connector",
        "version": "2.4.1",
        "attributes": {"vendor": "acme"},
    }


def test_personal_data_is_redacted_in_span_events_links_resource_and_scope(
    http: httpx.Client, exporting: Exporting
) -> None:
    hashed = Redactor().hash  # the collector's default keys and salt
    provider, exporter = exporting({"service.name": "stripe", "owner.email": "ops@acme.example"})
    tracer = provider.get_tracer("stripe.webhooks", "1.0", attributes={"support_phone": "+1 555 0199"})
    with tracer.start_as_current_span("charge.created") as upstream:
        pass
    with tracer.start_as_current_span(
        "POST /v1/refunds",
        attributes={
            "customer": {"email": "jane@example.com", "tier": "gold"},
            "card_number": 4111111111111111,
        },
        links=[Link(upstream.get_span_context(), {"billing.contact_email": "ap@globex.example"})],
    ) as span:
        try:
            raise PermissionError("refund refused")
        except PermissionError as error:
            span.record_exception(
                error, {"customer.phone": "+1 555 0100", "customer.iban": "DE89370400440532013000"}
            )
    provider.shutdown()

    assert exporter.results == [SpanExportResult.SUCCESS, SpanExportResult.SUCCESS]
    response = http.get(f"/api/traces/{trace_id_of(span)}")
    assert response.status_code == 200, response.text
    for clear in ("jane@", "555 01", "ap@globex", "ops@acme", "DE8937", "4111111111111111"):
        assert clear not in response.text, clear
    stored = {stored["name"]: stored for stored in response.json()["spans"]}["POST /v1/refunds"]
    assert stored["attributes"] == {
        "customer": {"email": hashed("jane@example.com"), "tier": "gold"},  # inside a key-value list too
        "card_number": hashed("4111111111111111"),  # a number under a sensitive key: hashed as its text
    }
    [exception] = stored["events"]
    assert exception["attributes"]["customer.phone"] == hashed("+1 555 0100")
    assert exception["attributes"]["customer.iban"] == hashed("DE89370400440532013000")
    assert exception["attributes"]["exception.message"] == "refund refused"
    assert stored["links"][0]["attributes"] == {"billing.contact_email": hashed("ap@globex.example")}
    assert stored["resource"]["owner.email"] == hashed("ops@acme.example")
    assert stored["resource"]["service.name"] == "stripe"
    assert stored["scope"]["attributes"] == {"support_phone": hashed("+1 555 0199")}
