"""Bad input never crashes the collector, never gets a 5xx, and never touches what was stored.

The whole HTTP API is fuzzed from its own OpenAPI schema (schemathesis), the OTLP endpoints with
random and mutated protobuf, and the JSON contract with extreme values.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from tests.support.collector_process import CollectorProcess

pytestmark = pytest.mark.slow

KNOWN = [
    {
        "correlation_id": "KEEP-1",
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": "2026-03-02T09:00:00Z",
        "event_id": "keep-1",
        "amount": 10.5,
        "currency": "EUR",
        "aliases": {"erp.sales_order": "KEEP-SO"},
        "attributes": {"region": "emea"},
    },
    {
        "correlation_id": "KEEP-1",
        "workflow": "quote-to-cash",
        "step": "erp.customer.validated",
        "system": "netsuite",
        "timestamp": "2026-03-02T09:05:00Z",
        "event_id": "keep-2",
    },
]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    # Event times are checked up to the end of the storable range, however far ahead of the clock.
    whole_range = {"THREADLINE_MAX_FUTURE_SKEW": f"{300 * 366}d"}
    store_dir = tmp_path_factory.mktemp("fuzz") / "store"
    running = CollectorProcess(store_dir=store_dir, isolated=True, env=whole_range).start()
    assert httpx.post(running.url + "/v1/events", json={"events": KNOWN}).status_code == 200
    yield running
    running.stop()


@pytest.fixture(scope="module")
def before(collector: CollectorProcess) -> dict[str, Any]:
    return httpx.get(
        collector.url + "/api/transactions/KEEP-SO", params={"as_of": "2026-03-03T00:00:00Z"}
    ).json()


def unchanged(collector: CollectorProcess, before: dict[str, Any]) -> None:
    after = httpx.get(
        collector.url + "/api/transactions/KEEP-SO", params={"as_of": "2026-03-03T00:00:00Z"}
    ).json()
    assert after == before
    assert httpx.get(collector.url + "/readyz").status_code == 200


def operations(collector: CollectorProcess) -> list[Any]:
    schema = schemathesis.openapi.from_url(collector.url + "/openapi.json")
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the collector's own schema does not read: say why
        found.append(result.ok())
    return found


def test_no_request_the_schema_allows_gets_a_server_error(collector: CollectorProcess) -> None:
    """Every operation, valid and invalid requests drawn from its schema (a few thousand in all)."""
    found = operations(collector)
    assert len(found) >= 12
    for operation in found:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def call(case: Any) -> None:
                case.call_and_validate(base_url=collector.url, checks=[not_a_server_error])

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong, e.g. GET /healthz


def test_the_fuzzed_api_left_stored_transactions_untouched(
    collector: CollectorProcess, before: dict[str, Any]
) -> None:
    assert before["event_count"] == 2
    unchanged(collector, before)


def valid_request() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fuzz")
    for n in range(5):
        with tracer.start_as_current_span(
            "erp.order.created",
            attributes={
                "threadline.correlation_id": f"FZ-{n}",
                "threadline.workflow": "quote-to-cash",
                "n": n,
            },
        ):
            pass
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def valid_logs_request() -> bytes:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("fuzz")
    for n in range(5):
        logger.emit(
            event_name="erp.order.created",
            severity_number=SeverityNumber.ERROR if n % 2 else SeverityNumber.INFO,
            body={"order": f"SO-{n}", "lines": [n, n + 1]},
            attributes={
                "threadline.correlation_id": f"FZ-{n}",
                "threadline.workflow": "quote-to-cash",
                "exception.message": "declined",
                "n": n,
            },
        )
    return encode_logs(exporter.get_finished_logs()).SerializeToString()


@pytest.mark.parametrize(
    ("path", "make_valid"), [("/v1/traces", valid_request), ("/v1/logs", valid_logs_request)]
)
def test_random_and_mutated_protobuf_never_gets_a_server_error(
    collector: CollectorProcess, before: dict[str, Any], path: str, make_valid: Callable[[], bytes]
) -> None:
    rng = random.Random(20261125)
    valid = make_valid()
    bodies = [rng.randbytes(rng.randint(0, 4096)) for _ in range(150)]
    for _ in range(350):
        body = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            action = rng.random()
            position = rng.randrange(len(body))
            if action < 0.5:
                body[position] ^= 1 << rng.randrange(8)
            elif action < 0.75:
                del body[position : position + rng.randint(1, 16)]
            else:
                body[position:position] = rng.randbytes(rng.randint(1, 16))
            if not body:
                break
        bodies.append(bytes(body))
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        for mangled in bodies:
            response = client.post(path, content=mangled, headers={"content-type": "application/x-protobuf"})
            assert response.status_code in (200, 400), (response.status_code, response.text[:300])
    unchanged(collector, before)


# Any JSON, under the names OTLP trace and logs requests use, so that much of it reaches deep into one.
OTLP_NAMES = [
    *("resourceSpans", "scopeSpans", "spans", "resource", "scope", "attributes", "events", "links"),
    *("resourceLogs", "scopeLogs", "logRecords", "body", "severityNumber", "eventName"),
    "observedTimeUnixNano",
    *("key", "value", "name", "status", "code", "message", "kind", "traceId", "spanId"),
    *("stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue", "bytesValue"),
    *("values", "startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "droppedAttributesCount"),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(OTLP_NAMES), inner, max_size=4)
    ),
    max_leaves=12,
)


def in_a_span(value: Any) -> dict[str, Any]:
    span = {
        "traceId": "1" * 32,
        "spanId": "2" * 16,
        "name": "fuzzed",
        "attributes": [{"key": "k", "value": value}],
    }
    span["events"] = span["links"] = [value]
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def in_a_log_record(value: Any) -> dict[str, Any]:
    record = {
        "traceId": "1" * 32,
        "spanId": "2" * 16,
        "eventName": "fuzzed",
        "severityNumber": 17,
        "attributes": [{"key": "threadline.correlation_id", "value": value}, {"key": "k", "value": value}],
        "body": value,
    }
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


PYTHON_WORDS = re.compile(r"int\(\)|NoneType|object is not|bytes-like|has no len|Failed to parse|\bdict\b")


@pytest.mark.parametrize(("path", "wrap"), [("/v1/traces", in_a_span), ("/v1/logs", in_a_log_record)])
def test_malformed_otlp_json_gets_a_400_in_words_never_python_s(
    collector: CollectorProcess, before: dict[str, Any], path: str, wrap: Callable[[Any], dict[str, Any]]
) -> None:
    with httpx.Client(base_url=collector.url, timeout=30) as client:

        @given(document=json_values | json_values.map(wrap))
        @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def post(document: Any) -> None:
            body = orjson.dumps(document)
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert response.status_code in (200, 400), (response.status_code, response.text[:300])
            assert not PYTHON_WORDS.search(response.text), response.text[:500]

        post()
    unchanged(collector, before)


def event(**fields: Any) -> dict[str, Any]:
    return {
        "correlation_id": "EXT-1",
        "workflow": "w",
        "step": "s",
        "system": "x",
        "timestamp": "2026-03-02T09:00:00Z",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"attributes": {"note": "x" * 1_000_000}}, "attributes.note", "at most 16384 characters"),
        ({"attributes": {f"k{n}": "v" for n in range(10_000)}}, "attributes", "at most 128 items"),
        ({"step": "bad\x00step"}, "step", "should match pattern"),
        ({"correlation_id": "line\nbreak"}, "correlation_id", "should match pattern"),
        ({"timestamp": "0001-01-01T00:00:00Z"}, "timestamp", "between 1970-01-01 and 2261-12-31"),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "timestamp", "between 1970-01-01 and 2261-12-31"),
        ({"amount": "NaN"}, "amount", "finite number"),
        ({"amount": "1e400"}, "amount", "finite number"),
        ({"amount": 1e308}, "amount", "between -1,000,000,000,000,000 and 1,000,000,000,000,000"),
        ({"currency": "€€€"}, "currency", "should match pattern"),
    ],
)
def test_extreme_values_get_a_clear_400_naming_the_field(
    collector: CollectorProcess, fields: dict[str, Any], field: str, reason: str
) -> None:
    response = httpx.post(collector.url + "/v1/events", json={"events": [event(**fields)]}, timeout=60)
    assert response.status_code == 400, response.text[:300]
    problems = response.json()["problems"]
    assert any(p["field"] == field and reason in p["reason"] for p in problems), problems


@pytest.mark.parametrize("literal", [b"1e400", b"NaN", b"Infinity"])
def test_a_number_json_cannot_hold_is_refused(collector: CollectorProcess, literal: bytes) -> None:
    body = b'{"events": [{"correlation_id": "X", "workflow": "w", "step": "s", "system": "x", '
    body += b'"timestamp": "2026-03-02T09:00:00Z", "amount": ' + literal + b"}]}"
    response = httpx.post(
        collector.url + "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text[:300]
    assert response.json()["problems"][0]["field"] in ("body", "amount")


def test_unicode_keys_and_values_are_kept_as_sent(collector: CollectorProcess) -> None:
    key = "注文-ÄÖÜ-🧾"
    body = {"events": [event(correlation_id=key, attributes={"städte": "Zürich → 東京", "emoji🙂": "✓"})]}
    assert httpx.post(collector.url + "/v1/events", json=body).status_code == 200
    found = httpx.get(f"{collector.url}/api/transactions/{key}").json()
    assert found["events"][0]["attributes"] == {"städte": "Zürich → 東京", "emoji🙂": "✓"}


def test_a_time_at_the_edge_of_the_range_is_accepted(collector: CollectorProcess) -> None:
    edge = dt.datetime(2261, 12, 31, 23, 0, tzinfo=dt.UTC).isoformat()
    assert (
        httpx.post(
            collector.url + "/v1/events", json={"events": [event(correlation_id="EDGE", timestamp=edge)]}
        ).status_code
        == 200
    )
