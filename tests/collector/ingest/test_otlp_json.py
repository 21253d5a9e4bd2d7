"""``POST /v1/traces`` with OTLP/JSON that is JSON but not an OTLP request: a 400 that says where
(in the sender's JSON names, the span by name and the attribute by key) and why, in words.

Protobuf's own JSON parser answered these in Python's words ("invalid literal for int() with base
10", "'int' object is not iterable") or, for a bare string, not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.support.ingest import (
    assert_error,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    unique_key,
)

SPAN = "resourceSpans[0].scopeSpans[0].spans[0] (name 'erp.order.created')"
ATTEMPT = SPAN + ".attributes[2] (key 'threadline.attempt').value"
PYTHON_WORDS = re.compile(r"int\(\)|NoneType|object is not|bytes-like|has no len|Failed to parse|\bdict\b")


def request() -> dict[str, Any]:
    attributes = {
        "threadline.correlation_id": unique_key("OPP"),
        "threadline.workflow": "quote-to-cash",
        "threadline.attempt": 2,
    }
    span = otlp_json_span(new_trace_id(), new_span_id(), "erp.order.created", attributes=attributes)
    return otlp_json_request("netsuite", span)


def span_of(document: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


def attempt_of(document: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = span_of(document)["attributes"][2]["value"]
    return value


def _set(part: Callable[[dict[str, Any]], dict[str, Any]], **fields: Any) -> Callable[[dict[str, Any]], Any]:
    """A change to a valid request: ``fields`` set on one of its parts."""

    def change(document: dict[str, Any]) -> dict[str, Any]:
        part(document).update(fields)
        return document

    return change


def _replace(
    part: Callable[[dict[str, Any]], dict[str, Any]], **fields: Any
) -> Callable[[dict[str, Any]], Any]:
    """A change to a valid request: one of its parts becomes ``fields``."""

    def change(document: dict[str, Any]) -> dict[str, Any]:
        part(document).clear()
        part(document).update(fields)
        return document

    return change


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (
            lambda d: "just a string",
            "body",
            "must be a JSON object (an ExportTraceServiceRequest), not the string",
        ),
        (lambda d: [d], "body", "must be a JSON object (an ExportTraceServiceRequest), not an array"),
        (_set(span_of, startTimeUnixNano="soon"), SPAN + ".startTimeUnixNano", "must be a whole number"),
        (_set(span_of, endTimeUnixNano=1.5), SPAN + ".endTimeUnixNano", "must be a whole number"),
        (_set(span_of, startTimeUnixNano="-5"), SPAN + ".startTimeUnixNano", "must be between 0 and"),
        (_set(span_of, traceId=5), SPAN + ".traceId", "must be a string, not the number 5"),
        (_set(span_of, spanId="zz"), SPAN + ".spanId", "must be hex digits"),
        (
            _set(span_of, attributes={"plan": "pro"}),
            SPAN + ".attributes",
            "must be a JSON array, not an object",
        ),
        (
            _set(span_of, status="error"),
            SPAN + ".status",
            "must be a JSON object (Status), not the string 'error'",
        ),
        (_replace(attempt_of, intValue="two"), ATTEMPT + ".intValue", "must be a whole number"),
        (_replace(attempt_of, intValue={}), ATTEMPT + ".intValue", "not an object"),
        (_replace(attempt_of, boolValue="yes"), ATTEMPT + ".boolValue", "must be true or false"),
        (_replace(attempt_of, doubleValue="x"), ATTEMPT + ".doubleValue", "must be a number"),
        (_set(attempt_of, stringValue="2"), ATTEMPT, "has both intValue and stringValue"),
    ],
    ids=[
        "bare string",
        "bare array",
        "time in words",
        "fractional time",
        "negative time",
        "numeric trace id",
        "id not hex",
        "attributes as an object",
        "status as a string",
        "int in words",
        "int as an object",
        "bool as a string",
        "double in words",
        "two values",
    ],
)
def test_malformed_otlp_json_is_refused_naming_where_and_why(
    http: httpx.Client, change: Callable[[dict[str, Any]], Any], field: str, reason: str
) -> None:
    response = http.post(
        "/v1/traces", content=orjson.dumps(change(request())), headers={"content-type": "application/json"}
    )

    body = assert_error(response, 400, "invalid_otlp")
    [problem] = body["problems"]
    assert problem["field"] == field
    assert reason in problem["reason"]
    assert body["message"] == f"{field} {problem['reason']}"
    assert not PYTHON_WORDS.search(response.text), response.text


@pytest.mark.parametrize(
    "value",
    [None, [1]],
    ids=["null", "array"],
)
def test_a_span_that_is_not_an_object_is_refused_naming_it(http: httpx.Client, value: Any) -> None:
    document = request()
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].append(value)

    response = http.post(
        "/v1/traces", content=orjson.dumps(document), headers={"content-type": "application/json"}
    )

    [problem] = assert_error(response, 400, "invalid_otlp")["problems"]
    assert problem["field"] == "resourceSpans[0].scopeSpans[0].spans[1]"
    assert problem["reason"] in ("must not be null", "must be a JSON object (Span), not an array")


def test_null_fields_and_unknown_fields_are_read_as_absent(http: httpx.Client) -> None:
    # Protobuf's JSON mapping: null is the default value; a receiver ignores fields it does not know.
    document = request()
    span_of(document).update(
        events=None, links=None, droppedAttributesCount=None, comesFromANewerSdk={"x": 1}
    )

    response = http.post(
        "/v1/traces", content=orjson.dumps(document), headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text
