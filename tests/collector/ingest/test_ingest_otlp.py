"""``POST /v1/traces``: OTLP/HTTP from the official OpenTelemetry exporter (protobuf) and OTLP/JSON.

Every span is kept as a technical span (``GET /api/traces/{trace_id}``); a span carrying
``threadline.correlation_id`` is also a business event (README, "From any OpenTelemetry SDK"); a span whose
business attributes are invalid is counted in the response's ``partial_success``.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import (
    event_count,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    unique_key,
)


class RecordingExporter(OTLPSpanExporter):
    """The official OTLP/HTTP exporter, unchanged, remembering what each export returned."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        self.results.append(result)
        return result


def _provider(exporter: SpanExporter, batch: bool = False) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "netsuite"}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def _trace(http: httpx.Client, trace_id: str) -> dict[str, Any]:
    response = http.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    trace: dict[str, Any] = response.json()
    return trace


def _hex(number: int, digits: int) -> str:
    return format(number, f"0{digits}x")


@pytest.fixture
def recorded_spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """Spans made by the real SDK, kept in memory, to be encoded as the exporter encodes them."""
    memory = InMemorySpanExporter()
    provider = _provider(memory)
    yield provider, memory
    provider.shutdown()


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate], ids=lambda c: c.value
)
def test_the_official_exporter_delivers_business_and_technical_spans(
    http: httpx.Client, live_collector: CollectorProcess, compression: Compression
) -> None:
    key = unique_key("OPP")
    exporter = RecordingExporter(
        endpoint=live_collector.url + "/v1/traces", compression=compression, timeout=10
    )
    provider = _provider(exporter)
    tracer = provider.get_tracer("tests.collector")
    attributes = {"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"}

    with (
        tracer.start_as_current_span("erp.order.created", attributes=attributes) as business,
        tracer.start_as_current_span("SELECT sales_order") as technical,
    ):
        pass
    provider.shutdown()

    assert exporter.results == [SpanExportResult.SUCCESS, SpanExportResult.SUCCESS]
    trace_id = _hex(business.get_span_context().trace_id, 32)
    business_span_id = _hex(business.get_span_context().span_id, 16)
    trace = _trace(http, trace_id)
    spans = {span["name"]: span for span in trace["spans"]}
    assert set(spans) == {"erp.order.created", "SELECT sales_order"}
    assert spans["SELECT sales_order"]["span_id"] == _hex(technical.get_span_context().span_id, 16)
    assert spans["SELECT sales_order"]["parent_span_id"] == business_span_id
    assert spans["erp.order.created"]["service"] == "netsuite"
    [event] = trace["events"]
    assert (event["correlation_id"], event["span_id"], event["source"]) == (key, business_span_id, "otlp")
    assert event_count(http, key) == 1


def test_the_batch_span_processor_delivers_every_span(
    http: httpx.Client, live_collector: CollectorProcess
) -> None:
    exporter = RecordingExporter(endpoint=live_collector.url + "/v1/traces", compression=Compression.Gzip)
    provider = _provider(exporter, batch=True)
    tracer = provider.get_tracer("tests.collector")

    with tracer.start_as_current_span("nightly.sync") as root:
        for number in range(200):
            with tracer.start_as_current_span(f"record.{number}"):
                pass
    assert provider.force_flush(10_000)
    provider.shutdown()

    assert exporter.results and set(exporter.results) == {SpanExportResult.SUCCESS}
    assert len(_trace(http, _hex(root.get_span_context().trace_id, 32))["spans"]) == 201


def test_a_span_without_threadline_attributes_is_stored_as_a_technical_span_only(
    http: httpx.Client, live_collector: CollectorProcess
) -> None:
    exporter = RecordingExporter(endpoint=live_collector.url + "/v1/traces")
    provider = _provider(exporter)

    with provider.get_tracer("tests.collector").start_as_current_span("GET /health") as span:
        span.set_attribute("http.response.status_code", 200)
    provider.shutdown()

    assert exporter.results == [SpanExportResult.SUCCESS]
    trace = _trace(http, _hex(span.get_span_context().trace_id, 32))
    [stored] = trace["spans"]
    assert stored["attributes"] == {"http.response.status_code": 200}  # typed, as sent
    assert trace["events"] == []


def test_a_span_with_invalid_business_attributes_is_counted_in_partial_success_and_kept_as_a_span(
    http: httpx.Client, recorded_spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = recorded_spans
    tracer = provider.get_tracer("tests.collector")
    key = unique_key("OPP")
    with tracer.start_as_current_span("billing.sync") as root:
        tracer.start_span(
            "crm.opportunity.won",
            attributes={"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"},
        ).end()
        tracer.start_span(
            "billing.subscription.activated",
            attributes={"threadline.correlation_id": key, "threadline.status": "almost"},  # no workflow
        ).end()
    request = encode_spans(memory.get_finished_spans()).SerializeToString()  # as the exporter does

    response = http.post("/v1/traces", content=request, headers={"content-type": "application/x-protobuf"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    message = answer.partial_success.error_message
    assert "billing.subscription.activated" in message
    assert "workflow is required" in message and "status" in message
    trace = _trace(http, _hex(root.get_span_context().trace_id, 32))
    assert len(trace["spans"]) == 3
    assert [event["step"] for event in trace["events"]] == ["crm.opportunity.won"]


def test_a_fully_accepted_export_answers_an_empty_response(
    http: httpx.Client, recorded_spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = recorded_spans
    provider.get_tracer("tests.collector").start_span("poll.queue").end()

    response = http.post(
        "/v1/traces",
        content=encode_spans(memory.get_finished_spans()).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )

    assert response.status_code == 200, response.text
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")


def test_a_span_exported_twice_is_stored_once(
    http: httpx.Client, recorded_spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = recorded_spans
    key = unique_key("OPP")
    with provider.get_tracer("tests.collector").start_as_current_span(
        "crm.opportunity.won",
        attributes={"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"},
    ) as span:
        pass
    request = encode_spans(memory.get_finished_spans()).SerializeToString()

    for _ in range(2):  # an exporter retry after a lost response
        response = http.post(
            "/v1/traces", content=request, headers={"content-type": "application/x-protobuf"}
        )
        assert response.status_code == 200, response.text

    assert len(_trace(http, _hex(span.get_span_context().trace_id, 32))["spans"]) == 1
    assert event_count(http, key) == 1


def _post_json(http: httpx.Client, request: dict[str, Any], gzipped: bool = False) -> httpx.Response:
    body = orjson.dumps(request)
    headers = {"content-type": "application/json"}
    if gzipped:
        body, headers["content-encoding"] = gzip.compress(body), "gzip"
    return http.post("/v1/traces", content=body, headers=headers)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_otlp_json_with_hex_ids_is_accepted(http: httpx.Client, gzipped: bool) -> None:
    key, trace_id, parent_id, child_id = unique_key("OPP"), new_trace_id(), new_span_id(), new_span_id()
    request = otlp_json_request(
        "netsuite",
        otlp_json_span(trace_id, parent_id, "POST /orders"),
        otlp_json_span(
            trace_id,
            child_id,
            "erp.order.created",
            parent_span_id=parent_id,
            attributes={"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"},
        ),
    )

    response = _post_json(http, request, gzipped)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = json_format.Parse(response.text, ExportTraceServiceResponse())
    assert not answer.HasField("partial_success")
    trace = _trace(http, trace_id)
    spans = {span["span_id"]: span for span in trace["spans"]}
    assert set(spans) == {parent_id, child_id}
    assert spans[child_id]["parent_span_id"] == parent_id
    assert spans[child_id]["kind"] == "client"
    assert [(event["correlation_id"], event["span_id"]) for event in trace["events"]] == [(key, child_id)]


def test_spans_of_a_trace_spanning_fourteen_years_of_months_are_all_kept(http: httpx.Client) -> None:
    trace_id, month_ns = new_trace_id(), 30 * 24 * 3600 * 10**9
    starts = [946_684_800 * 10**9 + month * month_ns for month in range(170)]  # from 2000-01-01
    spans = [otlp_json_span(trace_id, new_span_id(), "GET /archive", start_unix_nano=at) for at in starts]

    response = _post_json(http, otlp_json_request("archive", *spans))

    assert response.status_code == 200, response.text  # more months than ClickHouse's 100 per INSERT
    assert len(_trace(http, trace_id)["spans"]) == len(starts)


def test_otlp_json_reports_rejected_spans_in_partial_success(http: httpx.Client) -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    request = otlp_json_request(
        "stripe",
        otlp_json_span(
            trace_id,
            span_id,
            "billing.subscription.activated",
            attributes={
                "threadline.correlation_id": unique_key("OPP"),
                "threadline.workflow": "quote-to-cash",
                "threadline.currency": "euros",
            },
        ),
    )

    response = _post_json(http, request)

    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert "currency" in partial["errorMessage"]
    assert [span["span_id"] for span in _trace(http, trace_id)["spans"]] == [span_id]


def test_a_business_span_takes_the_otlp_defaults(http: httpx.Client) -> None:
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()
    span = otlp_json_span(
        trace_id,
        span_id,
        "billing.subscription.activated",
        duration_ms=340,
        error=True,
        attributes={"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash", "plan": "pro"},
    )

    assert _post_json(http, otlp_json_request("stripe", span)).status_code == 200

    [event] = http.get(f"/api/transactions/{key}").json()["events"]
    assert {name: event[name] for name in ("step", "system", "status", "event_id", "timestamp")} == {
        "step": "billing.subscription.activated",  # the span name
        "system": "stripe",  # the resource's service.name
        "status": "error",  # from the span status
        "event_id": trace_id + span_id,
        "timestamp": "2024-05-01T09:00:00Z",  # the span start
    }
    assert event["duration_ms"] == 340
    assert (event["trace_id"], event["span_id"]) == (trace_id, span_id)
    assert event["attributes"] == {"plan": "pro"}


def test_threadline_attributes_override_the_otlp_defaults(http: httpx.Client) -> None:
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()
    span = otlp_json_span(
        trace_id,
        span_id,
        "POST /v1/subscriptions",
        attributes={
            "threadline.correlation_id": key,
            "threadline.workflow": "quote-to-cash",
            "threadline.step": "billing.subscription.activated",
            "threadline.system": "stripe",
            "threadline.status": "retrying",
            "threadline.event_id": f"{key}-billing",
            "threadline.attempt": 2,
            "threadline.amount": 1250.5,
            "threadline.currency": "usd",
            "threadline.error.kind": "transient",
            "threadline.alias.erp.sales_order": f"SO-{key}",
        },
    )

    assert _post_json(http, otlp_json_request("billing-gateway", span)).status_code == 200

    [event] = http.get(f"/api/transactions/SO-{key}").json()["events"]  # found by its alias too
    assert {
        name: event[name]
        for name in ("step", "system", "status", "event_id", "attempt", "amount", "currency", "aliases")
    } == {
        "step": "billing.subscription.activated",
        "system": "stripe",
        "status": "retrying",
        "event_id": f"{key}-billing",
        "attempt": 2,
        "amount": 1250.5,
        "currency": "USD",
        "aliases": {"erp.sales_order": f"SO-{key}"},
    }
    assert event["error"]["kind"] == "transient"


def _export_business_span(
    collector: CollectorProcess, key: str, step: str, act: Callable[[trace.Span], None]
) -> list[SpanExportResult]:
    """One business span of ``key`` sent by the official exporter, ``act`` doing to it what the
    integration does; what each export returned."""
    exporter = RecordingExporter(endpoint=collector.url + "/v1/traces")
    provider = _provider(exporter)
    attributes = {"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"}
    with provider.get_tracer("tests.collector").start_as_current_span(step, attributes=attributes) as span:
        act(span)
    provider.shutdown()
    return exporter.results


def test_an_otel_error_status_and_recorded_exception_become_the_event_s_error(
    http: httpx.Client, live_collector: CollectorProcess
) -> None:
    key = unique_key("OPP")

    def fail(span: trace.Span) -> None:
        try:
            raise ValueError("credit limit of 40000 USD exceeded")
        except ValueError as exception:
            span.record_exception(exception)
        span.set_status(Status(StatusCode.ERROR, "order refused by NetSuite"))

    assert _export_business_span(live_collector, key, "erp.order.created", fail) == [SpanExportResult.SUCCESS]

    detail = http.get(f"/api/transactions/{key}").json()
    [event] = detail["events"]
    assert (event["step"], event["system"], event["status"]) == ("erp.order.created", "netsuite", "error")
    error = event["error"]
    assert error["kind"] == "transient"  # no threadline.error.kind: the documented default kind
    assert error["message"] == "order refused by NetSuite"  # the status message
    assert error["type"] == "ValueError"  # exception.type
    assert error["stacktrace"].startswith("Traceback (most recent call last)")  # exception.stacktrace
    assert "ValueError: credit limit of 40000 USD exceeded" in error["stacktrace"]
    [step] = [step for step in detail["steps"] if step["name"] == "erp.order.created"]
    assert (step["state"], step["error"]["kind"]) == ("failed", "transient")


def test_a_recorded_timeout_gets_the_timeout_kind_and_the_exception_s_message(
    http: httpx.Client, live_collector: CollectorProcess
) -> None:
    key = unique_key("OPP")

    def time_out(span: trace.Span) -> None:
        span.record_exception(TimeoutError("Stripe did not answer in 30 s"))
        span.set_status(Status(StatusCode.ERROR))  # no description

    _export_business_span(live_collector, key, "billing.subscription.activated", time_out)

    [event] = http.get(f"/api/transactions/{key}").json()["events"]
    assert {name: event["error"][name] for name in ("kind", "message", "type")} == {
        "kind": "timeout",
        "message": "Stripe did not answer in 30 s",  # exception.message
        "type": "TimeoutError",
    }


def test_a_span_stamped_years_ahead_is_refused_in_partial_success_and_the_others_are_stored(
    http: httpx.Client,
) -> None:
    key, trace_id, now_id, future_id = unique_key("OPP"), new_trace_id(), new_span_id(), new_span_id()
    business = {"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"}
    five_years_ahead = time.time_ns() + 5 * 365 * 86_400 * 10**9
    request = otlp_json_request(
        "netsuite",
        otlp_json_span(trace_id, now_id, "crm.opportunity.won", attributes=business),
        otlp_json_span(
            trace_id, future_id, "erp.order.created", start_unix_nano=five_years_ahead, attributes=business
        ),
    )

    response = _post_json(http, request)

    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    message = partial["errorMessage"]
    assert f"span 'erp.order.created' ({future_id})" in message
    assert "startTimeUnixNano" in message and "THREADLINE_MAX_FUTURE_SKEW" in message
    assert [event["step"] for event in http.get(f"/api/transactions/{key}").json()["events"]] == [
        "crm.opportunity.won"
    ]


def test_an_amount_attribute_larger_than_any_invoice_is_refused_naming_the_attribute(
    http: httpx.Client,
) -> None:
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()
    attributes = {
        "threadline.correlation_id": key,
        "threadline.workflow": "quote-to-cash",
        "threadline.amount": 1e308,
        "threadline.currency": "USD",
    }
    request = otlp_json_request(
        "netsuite", otlp_json_span(trace_id, span_id, "erp.order.created", attributes=attributes)
    )

    response = _post_json(http, request)

    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert (
        f"span 'erp.order.created' ({span_id}): threadline.amount must be between" in partial["errorMessage"]
    )
    assert http.get(f"/api/transactions/{key}").status_code == 404
