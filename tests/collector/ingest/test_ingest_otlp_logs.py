"""``POST /v1/logs``: OTLP/HTTP logs from the official OpenTelemetry exporters (Python and Node.js,
protobuf) and OTLP/JSON.

A log record carrying ``threadline.*`` attributes is a business event, as a span is (README, "OTLP
logs"), linked to its trace by the record's trace and span ids; a record without them is accepted
and not stored; a business record that is invalid is counted in the response's ``partial_success``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.collector.ingest.test_ingest_metrics import ACCEPTED, DUPLICATES, RECEIVED
from tests.support.collector_process import CollectorProcess
from tests.support.ingest import (
    MetricsSnapshot,
    assert_error,
    assert_rpc_error,
    event_count,
    field_violations,
    new_span_id,
    new_trace_id,
    otlp_json_attributes,
    unique_key,
)
from tests.support.node_packages import installed
from tests.support.stores import Stores
from threadline.collector.ingest.otlp_logs import MAX_LOG_RECORDS_PER_REQUEST

MAY_1 = 1_714_554_000_000_000_000  # 2024-05-01T09:00:00Z in nanoseconds
JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}


class RecordingExporter(OTLPLogExporter):
    """The official OTLP/HTTP log exporter, unchanged, remembering what each export returned."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.results: list[LogRecordExportResult] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = super().export(batch)
        self.results.append(result)
        return result


def _events(http: httpx.Client, key: str) -> dict[str, dict[str, Any]]:
    """The transaction's events by step."""
    response = http.get(f"/api/transactions/{key}")
    assert response.status_code == 200, response.text
    return {event["step"]: event for event in response.json()["events"]}


def _json_record(
    name: str, attributes: dict[str, Any], *, trace_id: str = "", span_id: str = "", **fields: Any
) -> dict[str, Any]:
    """One log record in OTLP/JSON: camelCase, ids in hex, times as strings, enums as integers."""
    record: dict[str, Any] = {
        "timeUnixNano": str(MAY_1),
        "observedTimeUnixNano": str(MAY_1 + 5_000_000),
        "severityNumber": 9,  # SEVERITY_NUMBER_INFO
        "eventName": name,
        "attributes": otlp_json_attributes(attributes),
        **fields,
    }
    if trace_id:
        record["traceId"], record["spanId"] = trace_id, span_id
    return record


def _json_request(service: str, *records: dict[str, Any]) -> dict[str, Any]:
    """An ExportLogsServiceRequest in OTLP/JSON, one resource (``service.name``) and one scope."""
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": otlp_json_attributes({"service.name": service})},
                "scopeLogs": [{"scope": {"name": "tests.collector"}, "logRecords": list(records)}],
            }
        ]
    }


def _business(key: str, **attributes: Any) -> dict[str, Any]:
    return {"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash", **attributes}


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=lambda c: c.value)
def test_the_official_python_exporter_delivers_log_records_as_business_events(
    http: httpx.Client, live_collector: CollectorProcess, compression: Compression
) -> None:
    key = unique_key("OPP")
    exporter = RecordingExporter(
        endpoint=live_collector.url + "/v1/logs", compression=compression, timeout=10
    )
    provider = LoggerProvider(resource=Resource.create({"service.name": "salesforce"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("tests.collector")
    tracer = TracerProvider().get_tracer("tests.collector")

    with tracer.start_as_current_span("POST /opportunities") as span:
        logger.emit(
            event_name="crm.opportunity.won",
            severity_number=SeverityNumber.INFO,
            body="opportunity won",
            attributes=_business(
                key,
                **{"threadline.amount": 129.5, "customer.tier": "gold", "customer_email": "jane@example.com"},
            ),
        )
        try:
            raise TimeoutError("NetSuite did not answer within 30s")
        except TimeoutError as error:
            logger.emit(
                event_name="erp.customer.validated",
                severity_number=SeverityNumber.ERROR,
                body="customer validation failed",
                attributes=_business(key, **{"threadline.system": "netsuite"}),
                exception=error,
            )
        logger.emit(severity_number=SeverityNumber.INFO, body="cache warmed")  # no business event
    provider.shutdown()

    assert exporter.results and set(exporter.results) == {LogRecordExportResult.SUCCESS}
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")
    events = _events(http, key)
    assert set(events) == {"crm.opportunity.won", "erp.customer.validated"}
    won, validated = events["crm.opportunity.won"], events["erp.customer.validated"]
    assert (won["system"], won["status"], won["amount"], won["source"]) == (
        "salesforce",
        "ok",
        129.5,
        "otlp_logs",
    )
    assert won["attributes"]["customer.tier"] == "gold"
    assert won["attributes"]["customer_email"].startswith("redacted:")  # a sensitive key, as for spans
    assert (validated["system"], validated["status"]) == ("netsuite", "error")
    assert validated["error"]["kind"] == "timeout"  # TimeoutError: the SDK's rule for spans, too
    assert validated["error"]["message"] == "NetSuite did not answer within 30s"
    assert validated["error"]["type"] == "TimeoutError" and "Traceback" in validated["error"]["stacktrace"]
    assert validated["attributes"] == {}  # the exception is the event's error, not an attribute
    for event in (won, validated):
        assert (event["trace_id"], event["span_id"]) == (trace_id, span_id)
    assert trace_id in {event["trace_id"] for event in http.get(f"/api/traces/{trace_id}").json()["events"]}


def test_otlp_json_with_hex_ids_is_accepted_and_takes_the_record_s_defaults(http: httpx.Client) -> None:
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()
    request = _json_request(
        "netsuite",
        _json_record("erp.order.created", _business(key), trace_id=trace_id, span_id=span_id),
        # No time: the time it was observed. ERROR but an explicit status: the status holds.
        _json_record(
            "billing.subscription.activated",
            _business(key, **{"threadline.status": "ok", "threadline.system": "stripe"}),
            timeUnixNano="0",
            severityNumber=17,
        ),
        # No event name: the step is the attribute's.
        _json_record(
            "", _business(key, **{"threadline.step": "support.entitlement.created"}), severityNumber=21
        ),
        # No event name but the attribute that carried it before OTLP 1.5.
        _json_record("", _business(key, **{"event.name": "cpq.quote.approved"})),
        _json_record("", {"http.route": "/health"}, body={"stringValue": "GET /health 200"}),
    )

    response = http.post("/v1/logs", content=orjson.dumps(request), headers=JSON)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert not json_format.Parse(response.text, ExportLogsServiceResponse()).HasField("partial_success")
    events = _events(http, key)
    assert set(events) == {
        "erp.order.created",
        "billing.subscription.activated",
        "support.entitlement.created",
        "cpq.quote.approved",
    }
    created = events["erp.order.created"]
    assert (created["system"], created["status"], created["timestamp"]) == (
        "netsuite",
        "ok",
        "2024-05-01T09:00:00Z",
    )
    assert (created["trace_id"], created["span_id"]) == (trace_id, span_id)
    activated = events["billing.subscription.activated"]
    assert (activated["system"], activated["status"]) == ("stripe", "ok")
    assert activated["timestamp"] == "2024-05-01T09:00:00.005000Z"
    assert activated["trace_id"] is None
    entitled = events["support.entitlement.created"]
    assert entitled["status"] == "error"  # FATAL, and no status said otherwise
    assert entitled["error"]["kind"] == "transient"


def test_invalid_business_records_are_counted_in_partial_success_and_the_others_stored(
    http: httpx.Client,
) -> None:
    key = unique_key("OPP")
    request = _json_request(
        "stripe",
        _json_record("crm.opportunity.won", _business(key)),
        _json_record("billing.subscription.activated", _business(key, **{"threadline.currency": "euros"})),
        # Business attributes but no correlation id: refused, not dropped unseen.
        _json_record("erp.order.created", {"threadline.workflow": "quote-to-cash"}),
        _json_record("", {"http.route": "/health"}),  # no business event: neither stored nor refused
        _json_record("erp.customer.validated", _business(key), trace_id="abcd", span_id=new_span_id()),
    )

    response = http.post("/v1/logs", content=orjson.dumps(request), headers=JSON)

    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 3
    message = partial["errorMessage"]
    assert "resourceLogs[0].scopeLogs[0].logRecords[1] ('billing.subscription.activated')" in message
    assert "threadline.currency" in message
    assert "logRecords[2] ('erp.order.created'): threadline.correlation_id is required" in message
    assert "logRecords[3]" not in message
    assert "logRecords[4] ('erp.customer.validated'): traceId must be 16 bytes" in message
    assert set(_events(http, key)) == {"crm.opportunity.won"}


def test_a_record_exported_twice_is_stored_once_and_counted_a_duplicate(http: httpx.Client) -> None:
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()
    body = orjson.dumps(
        _json_request(
            "salesforce",
            _json_record("crm.opportunity.won", _business(key), trace_id=trace_id, span_id=span_id),
            # The same span, another record: another event.
            _json_record("cpq.quote.approved", _business(key), trace_id=trace_id, span_id=span_id),
        )
    )
    before = MetricsSnapshot.scrape(http)

    for _ in range(2):  # an exporter retry after a lost response
        response = http.post("/v1/logs", content=body, headers=JSON)
        assert response.status_code == 200, response.text

    assert event_count(http, key) == 2
    after = MetricsSnapshot.scrape(http)
    moved = {
        name: after.value(name, endpoint="logs") - before.value(name, endpoint="logs")
        for name in (RECEIVED, ACCEPTED, DUPLICATES)
    }
    assert moved == {RECEIVED: 4, ACCEPTED: 2, DUPLICATES: 2}


def test_garbage_protobuf_is_refused_400_in_protobuf(http: httpx.Client) -> None:
    response = http.post("/v1/logs", content=b"\xff\xff\xff\xff not protobuf", headers=PROTOBUF)

    answer = assert_rpc_error(response, 400, "invalid_otlp")
    assert "ExportLogsServiceRequest" in answer.message
    assert field_violations(answer) == {
        "body": "is not a protobuf ExportLogsServiceRequest (it does not decode)"
    }


def test_json_with_a_bad_field_is_refused_400_naming_it_and_nothing_is_stored(http: httpx.Client) -> None:
    key = unique_key("OPP")
    good = _json_record("crm.opportunity.won", _business(key))
    bad = _json_record("erp.order.created", _business(key), timeUnixNano="soon")

    response = http.post("/v1/logs", content=orjson.dumps(_json_request("netsuite", good, bad)), headers=JSON)

    body = assert_error(response, 400, "invalid_otlp")
    [problem] = body["problems"]
    assert (
        problem["field"]
        == "resourceLogs[0].scopeLogs[0].logRecords[1] (eventName 'erp.order.created').timeUnixNano"
    )
    assert "whole number" in problem["reason"]
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_more_records_than_one_request_may_carry_are_refused_413_and_nothing_is_stored(
    http: httpx.Client,
) -> None:
    key = unique_key("OPP")
    records = [_json_record("crm.opportunity.won", _business(key))]
    records += [_json_record("", {"http.route": "/health"})] * MAX_LOG_RECORDS_PER_REQUEST

    response = http.post("/v1/logs", content=orjson.dumps(_json_request("crm", *records)), headers=JSON)

    body = assert_error(response, 413, "too_many_log_records")
    assert body["problems"][0]["field"] == "resourceLogs"
    assert f"at most {MAX_LOG_RECORDS_PER_REQUEST} per request" in body["message"]
    assert http.get(f"/api/transactions/{key}").status_code == 404


@pytest.fixture(scope="session")
def node_sender() -> Path:
    """The Node.js sender, its packages installed from the committed lock file once."""
    return installed("the Node.js exporter test") / "send_logs.mjs"


INGEST_KEY, READ_KEY, THROTTLED_KEY = "tl_shop_ingest", "tl_shop_read", "tl_shop_throttled"


@pytest.fixture(scope="module")
def keyed_collector(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector that asks for API keys: one that may ingest, one that may read, one throttled."""
    keys = tmp_path_factory.mktemp("keys") / "keys.yaml"
    keys.write_text(
        "keys:\n"
        f"  - {{name: shop, key: {INGEST_KEY}, tenant: shop, roles: [ingest]}}\n"
        f"  - {{name: dashboard, key: {READ_KEY}, tenant: shop, roles: [read]}}\n"
        f"  - {{name: throttled, key: {THROTTLED_KEY}, tenant: shop, roles: [ingest],"
        " events_per_second: 5}\n"
    )
    collector = stores.collector({"THREADLINE_API_KEYS": str(keys)}).start()
    yield collector
    collector.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _reader(collector: CollectorProcess) -> httpx.Client:
    """A client on ``collector`` with the read key (a request may send another)."""
    return httpx.Client(base_url=collector.url, headers=_bearer(READ_KEY), timeout=30)


def test_only_a_key_with_the_ingest_role_may_send_logs(keyed_collector: CollectorProcess) -> None:
    key = unique_key("OPP")
    body = orjson.dumps(_json_request("salesforce", _json_record("crm.opportunity.won", _business(key))))
    with _reader(keyed_collector) as http:
        assert_error(http.post("/v1/logs", content=body, headers=JSON), 403, "forbidden")  # a read key
        without = http.post("/v1/logs", content=body, headers={**JSON, "Authorization": ""})
        assert_error(without, 401, "unauthorized")
        assert http.post("/v1/logs", content=body, headers={**JSON, **_bearer(INGEST_KEY)}).status_code == 200
        assert event_count(http, key) == 1


def test_a_key_over_its_rate_is_told_to_retry_later_and_nothing_is_stored(
    keyed_collector: CollectorProcess,
) -> None:
    burst = [_json_record("crm.opportunity.won", _business(unique_key("RATE"))) for _ in range(50)]
    # Not business events: free, as they are not stored.
    burst += [_json_record("", {"http.route": "/health"}) for _ in range(100)]
    late = unique_key("RATE")
    more = [_json_record(f"step.{n}", _business(late)) for n in range(10)]
    headers = {**JSON, **_bearer(THROTTLED_KEY)}
    with _reader(keyed_collector) as http:
        # Ten seconds' worth at 5 events/s, then two seconds' worth, more than the bucket refills.
        assert (
            http.post(
                "/v1/logs", content=orjson.dumps(_json_request("crm", *burst)), headers=headers
            ).status_code
            == 200
        )
        refused = http.post("/v1/logs", content=orjson.dumps(_json_request("crm", *more)), headers=headers)
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert http.get(f"/api/transactions/{late}").status_code == 404


def test_the_official_node_exporter_delivers_log_records_as_business_events(
    node_sender: Path, keyed_collector: CollectorProcess
) -> None:
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()

    sent = subprocess.run(
        ["node", str(node_sender), keyed_collector.url, INGEST_KEY, key, trace_id, span_id],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert sent.returncode == 0, sent.stderr
    with _reader(keyed_collector) as http:
        events = _events(http, key)
    assert set(events) == {"crm.opportunity.won", "erp.order.created"}
    won, created = events["crm.opportunity.won"], events["erp.order.created"]
    assert (won["system"], won["status"], won["amount"], won["currency"]) == (
        "salesforce",
        "ok",
        129.5,
        "EUR",
    )
    assert (created["system"], created["status"]) == ("netsuite", "error")
    assert created["error"]["message"] == "credit limit exceeded"
    assert created["error"]["type"] == "Error"
    for event in (won, created):
        assert (event["trace_id"], event["span_id"], event["source"]) == (trace_id, span_id, "otlp_logs")
