"""Helpers for tests that speak to a collector's ingest endpoints over real HTTP."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from google.rpc import error_details_pb2, status_pb2
from prometheus_client.parser import text_string_to_metric_families

TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', '.py", line ')


def unique_key(prefix: str) -> str:
    """A correlation id no other test uses, so tests can share one collector and store."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def business_event(correlation_id: str, **fields: Any) -> dict[str, Any]:
    """A valid event of the JSON contract (README, "The collector"); ``fields`` override."""
    event: dict[str, Any] = {
        "correlation_id": correlation_id,
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": "2024-05-01T09:00:00Z",
    }
    event.update(fields)
    return event


def stripe_activation(number: int, at: Any, **attributes: str) -> dict[str, Any]:
    """Stripe's ``billing.subscription.activated`` for ``SO-<number>`` at ``at`` (a datetime), with
    its own event id and these attributes besides the subscription: the schema drift tests' event."""
    return business_event(
        f"SO-{number}",
        event_id=f"ev-{number}",
        step="billing.subscription.activated",
        system="stripe",
        timestamp=at.isoformat(),
        amount=1200.0,
        currency="EUR",
        attributes={"subscription": f"sub_{number}", **attributes},
    )


def padded_batch(correlation_id: str, size: int) -> bytes:
    """A valid JSON batch of one event, padded with JSON whitespace to exactly ``size`` bytes."""
    body = orjson.dumps({"events": [business_event(correlation_id)]})
    assert len(body) <= size
    return body + b" " * (size - len(body))


def post_events(http: httpx.Client, *events: Mapping[str, Any]) -> httpx.Response:
    return http.post("/v1/events", json={"events": list(events)})


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the collector's one error shape, with this status and code, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    for marker in TRACEBACK_MARKERS:
        assert marker not in response.text, f"a stack trace reached the client: {response.text}"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "problems"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def assert_rpc_error(response: httpx.Response, status: int, code: str) -> status_pb2.Status:
    """An OTLP/HTTP protobuf refusal: a protobuf ``google.rpc.Status``, as the OTLP specification says,
    carrying the collector's error code (``ErrorInfo.reason``), a message, and no traceback."""
    assert response.status_code == status, response.content[:300]
    assert response.headers["content-type"] == "application/x-protobuf", response.headers
    answer = status_pb2.Status.FromString(response.content)
    for marker in TRACEBACK_MARKERS:
        assert marker not in answer.message, f"a stack trace reached the client: {answer.message}"
    assert answer.message, answer
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in answer.details), answer
    assert info.reason == code, answer
    return answer


def field_violations(answer: status_pb2.Status) -> dict[str, str]:
    """The ``BadRequest`` field violations of a ``google.rpc.Status``: field → description."""
    request = error_details_pb2.BadRequest()
    found = [detail for detail in answer.details if detail.Unpack(request)]
    return {violation.field: violation.description for violation in request.field_violations} if found else {}


def event_count(http: httpx.Client, key: str) -> int:
    """How many events the query API says the transaction of ``key`` has (asserts it exists)."""
    response = http.get(f"/api/transactions/{key}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert len(detail["events"]) == detail["event_count"], detail
    return int(detail["event_count"])


@dataclass(frozen=True)
class MetricsSnapshot:
    """One scrape of ``GET /metrics``: sample values by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]  # metric family → counter, histogram, gauge...

    @classmethod
    def scrape(cls, http: httpx.Client) -> MetricsSnapshot:
        response = http.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain"), response.headers
        families = list(text_string_to_metric_families(response.text))
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in families
            for sample in family.samples
        }
        return cls(samples, {family.name: family.type for family in families})

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a labelled counter that has not been touched yet."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def gzip_bomb(inflated_bytes: int = 1 << 30, block: int = 1 << 20) -> bytes:
    """A valid gzip of ``inflated_bytes`` zeros, about 1/1000 of that size, built in well under a second.

    After a full flush the compressor starts afresh, so every further block of zeros compresses
    to the very same bytes: one block is compressed, repeated, and the trailer written by hand.
    """
    assert inflated_bytes % block == 0 and inflated_bytes < 1 << 32
    zeros = bytes(block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    last_block = compressor.flush(zlib.Z_FINISH)[:-8]  # without the trailer, which is for 2 blocks
    crc = 0
    for _ in range(inflated_bytes // block):
        crc = zlib.crc32(zeros, crc)
    blocks = inflated_bytes // block
    return first + repeated * (blocks - 1) + last_block + struct.pack("<II", crc, inflated_bytes)


def otlp_json_attributes(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Attributes in OTLP/JSON form (64-bit integers as strings, as the protobuf JSON mapping says)."""
    encoded = []
    for key, value in attributes.items():
        if isinstance(value, bool):
            typed: dict[str, Any] = {"boolValue": value}
        elif isinstance(value, int):
            typed = {"intValue": str(value)}
        elif isinstance(value, float):
            typed = {"doubleValue": value}
        else:
            typed = {"stringValue": str(value)}
        encoded.append({"key": key, "value": typed})
    return encoded


def otlp_json_span(
    trace_id: str,
    span_id: str,
    name: str,
    *,
    parent_span_id: str = "",
    start_unix_nano: int = 1_714_554_000_000_000_000,  # 2024-05-01T09:00:00Z
    duration_ms: int = 120,
    attributes: Mapping[str, Any] | None = None,
    error: bool = False,
) -> dict[str, Any]:
    """One span in OTLP/JSON: ids in hex (not base64), enums as integers, times as strings."""
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 3,  # SPAN_KIND_CLIENT
        "startTimeUnixNano": str(start_unix_nano),
        "endTimeUnixNano": str(start_unix_nano + duration_ms * 1_000_000),
        "attributes": otlp_json_attributes(attributes or {}),
        "status": {"code": 2, "message": "declined"} if error else {},
    }
    if parent_span_id:
        span["parentSpanId"] = parent_span_id
    return span


def otlp_json_request(service: str, *spans: dict[str, Any]) -> dict[str, Any]:
    """An ExportTraceServiceRequest in OTLP/JSON, one resource (``service.name``) and one scope."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": otlp_json_attributes({"service.name": service})},
                "scopeSpans": [{"scope": {"name": "tests.collector", "version": "1"}, "spans": list(spans)}],
            }
        ]
    }


def new_trace_id() -> str:
    return uuid.uuid4().hex


def new_span_id() -> str:
    return uuid.uuid4().hex[:16]
