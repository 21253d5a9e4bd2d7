"""Spans per OTLP request and nesting depth: bodies within the size limit that would still make the
collector work without bound (or fail with a 500) are refused with a 4xx naming the limit."""

from __future__ import annotations

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support.ingest import (
    assert_error,
    assert_rpc_error,
    business_event,
    field_violations,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    unique_key,
)

MAX_SPANS = 10_000
MAX_VALUE_DEPTH = 16
JSON_MAX_DEPTH = 1024
JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}
# One level of an OTLP/JSON AnyValue inside another: its opening and its closing.
KVLIST = ('{"kvlistValue":{"values":[{"key":"k","value":', "}]}}")
ARRAY = ('{"arrayValue":{"values":[', "]}}")


def protobuf_request(trace_id: str, spans: int, value: AnyValue | None = None) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for _ in range(spans):
        span = scope.spans.add(
            trace_id=bytes.fromhex(trace_id),
            span_id=bytes.fromhex(new_span_id()),
            name="erp.order.created",
            start_time_unix_nano=1_714_554_000_000_000_000,
            end_time_unix_nano=1_714_554_000_100_000_000,
        )
        if value is not None:
            span.attributes.add(key="deep").value.CopyFrom(value)  # add(value=) re-parses: too deep
    return request.SerializeToString()


def nested_value(levels: int, kind: str) -> AnyValue:
    value = AnyValue(string_value="x")
    for _ in range(levels):
        outer = AnyValue()
        if kind == "kvlist":
            outer.kvlist_value.values.add(key="k").value.CopyFrom(value)
        else:
            outer.array_value.values.add().CopyFrom(value)
        value = outer
    return value


def json_with_nested_attribute(trace_id: str, levels: int, level: tuple[str, str]) -> bytes:
    """An OTLP/JSON request whose one span has an attribute ``levels`` AnyValues deep, written out
    as text: JSON encoders refuse to write what is this deep."""
    span = otlp_json_span(trace_id, new_span_id(), "erp.order.created", attributes={"deep": "PLACEHOLDER"})
    text = orjson.dumps(otlp_json_request("erp", span)).decode()
    opening, closing = level
    nested = opening * levels + '{"stringValue":"x"}' + closing * levels
    return text.replace('{"stringValue":"PLACEHOLDER"}', nested).encode()


def assert_trace_not_stored(http: httpx.Client, trace_id: str) -> None:
    assert http.get(f"/api/traces/{trace_id}").status_code == 404


def test_an_otlp_json_request_of_more_spans_than_the_limit_is_refused_413(http: httpx.Client) -> None:
    trace_id = new_trace_id()
    spans = [otlp_json_span(trace_id, new_span_id(), "erp.order.created") for _ in range(MAX_SPANS + 1)]

    response = http.post("/v1/traces", content=orjson.dumps(otlp_json_request("erp", *spans)), headers=JSON)

    body = assert_error(response, 413, "too_many_spans")
    assert f"{MAX_SPANS + 1} spans; at most {MAX_SPANS} per request" in body["message"]
    assert body["problems"][0]["field"] == "resourceSpans"
    assert_trace_not_stored(http, trace_id)


def test_an_otlp_protobuf_request_of_more_spans_than_the_limit_is_refused_413_as_a_status(
    http: httpx.Client,
) -> None:
    trace_id = new_trace_id()

    response = http.post("/v1/traces", content=protobuf_request(trace_id, MAX_SPANS + 1), headers=PROTOBUF)

    answer = assert_rpc_error(response, 413, "too_many_spans")
    assert f"at most {MAX_SPANS} per request" in answer.message
    assert "resourceSpans" in field_violations(answer)
    assert_trace_not_stored(http, trace_id)


@pytest.mark.parametrize(
    ("levels", "level", "limit"),
    [
        (250, KVLIST, f"more than {MAX_VALUE_DEPTH} levels deep"),  # 1,000 JSON levels: a RecursionError
        (330, ARRAY, f"more than {MAX_VALUE_DEPTH} levels deep"),
        (1_000, KVLIST, f"more than {JSON_MAX_DEPTH} levels deep"),  # past what the JSON parser reads
        (MAX_VALUE_DEPTH + 1, ARRAY, f"more than {MAX_VALUE_DEPTH} levels deep"),
    ],
    ids=["kvlists-250", "arrays-330", "kvlists-1000", "arrays-17"],
)
def test_an_otlp_json_attribute_nested_past_the_limit_is_refused_400_naming_it(
    http: httpx.Client, levels: int, level: tuple[str, str], limit: str
) -> None:
    trace_id = new_trace_id()

    response = http.post(
        "/v1/traces", content=json_with_nested_attribute(trace_id, levels, level), headers=JSON
    )

    body = assert_error(response, 400, "invalid_otlp")
    assert limit in body["message"], body
    assert_trace_not_stored(http, trace_id)


def test_an_otlp_json_attribute_nested_to_the_limit_is_stored(http: httpx.Client) -> None:
    trace_id = new_trace_id()

    response = http.post(
        "/v1/traces", content=json_with_nested_attribute(trace_id, MAX_VALUE_DEPTH, ARRAY), headers=JSON
    )

    assert response.status_code == 200, response.text
    assert http.get(f"/api/traces/{trace_id}").status_code == 200


@pytest.mark.parametrize(
    ("levels", "kind"),
    [(MAX_VALUE_DEPTH + 1, "array"), (MAX_VALUE_DEPTH + 1, "kvlist"), (40, "kvlist"), (200, "array")],
)
def test_an_otlp_protobuf_attribute_nested_past_the_limit_is_refused_400_naming_it(
    http: httpx.Client, levels: int, kind: str
) -> None:
    trace_id = new_trace_id()

    response = http.post(
        "/v1/traces", content=protobuf_request(trace_id, 1, nested_value(levels, kind)), headers=PROTOBUF
    )

    answer = assert_rpc_error(response, 400, "invalid_otlp")
    assert f"more than {MAX_VALUE_DEPTH} levels deep" in answer.message, answer
    assert_trace_not_stored(http, trace_id)


@pytest.mark.parametrize("levels", [JSON_MAX_DEPTH + 1, 100_000])
def test_an_events_body_nested_past_the_json_limit_is_refused_400_naming_it(
    http: httpx.Client, levels: int
) -> None:
    key = unique_key("OPP")
    text = orjson.dumps({"events": [business_event(key, attributes={"deep": "PLACEHOLDER"})]}).decode()
    body = text.replace('"PLACEHOLDER"', "[" * levels + "]" * levels).encode()

    response = http.post("/v1/events", content=body, headers=JSON)

    answer = assert_error(response, 400, "invalid_events")
    assert answer["problems"] == [
        {"field": "body", "reason": f"nests arrays and objects more than {JSON_MAX_DEPTH} levels deep"}
    ]
    assert_error(http.get(f"/api/transactions/{key}"), 404, "not_found")
