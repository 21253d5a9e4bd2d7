"""``GET /metrics``: the ingest counters and latency histograms move with what the collector does.

The collector is shared, so each test compares two scrapes taken around its own requests.
"""

from __future__ import annotations

import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.ingest import (
    MetricsSnapshot,
    business_event,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    post_events,
    unique_key,
)

RECEIVED = "threadline_events_received_total"
ACCEPTED = "threadline_events_accepted_total"
REJECTED = "threadline_events_rejected_total"
DUPLICATES = "threadline_events_duplicates_dropped_total"
SPANS = "threadline_spans_stored_total"
BATCH_LATENCY = "threadline_ingest_batch_seconds"
INSERT_LATENCY = "threadline_store_insert_seconds"
CONTRACT = {
    "threadline_events_received": "counter",
    "threadline_events_accepted": "counter",
    "threadline_events_rejected": "counter",
    "threadline_events_duplicates_dropped": "counter",
    "threadline_spans_stored": "counter",
    BATCH_LATENCY: "histogram",
    INSERT_LATENCY: "histogram",
}


def _moved(before: MetricsSnapshot, after: MetricsSnapshot, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def test_the_ingest_metrics_are_exposed_in_prometheus_text(http: httpx.Client) -> None:
    types = MetricsSnapshot.scrape(http).types

    assert {name: types.get(name) for name in CONTRACT} == CONTRACT


def test_stored_events_move_received_and_accepted(http: httpx.Client) -> None:
    key = unique_key("OPP")
    before = MetricsSnapshot.scrape(http)

    post_events(http, business_event(key, event_id="a"), business_event(key, event_id="b"))

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, RECEIVED, endpoint="events") == 2
    assert _moved(before, after, ACCEPTED, endpoint="events") == 2
    assert _moved(before, after, DUPLICATES, endpoint="events") == 0


def test_a_duplicate_moves_duplicates_dropped_and_not_accepted(http: httpx.Client) -> None:
    event = business_event(unique_key("OPP"))
    post_events(http, event)
    before = MetricsSnapshot.scrape(http)

    post_events(http, event)

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, RECEIVED, endpoint="events") == 1
    assert _moved(before, after, ACCEPTED, endpoint="events") == 0
    assert _moved(before, after, DUPLICATES, endpoint="events") == 1


def test_a_refused_batch_counts_every_one_of_its_events_as_rejected_invalid(http: httpx.Client) -> None:
    key = unique_key("OPP")
    many_problems = business_event(key, status="?", attempt=0, colour="red")
    before = MetricsSnapshot.scrape(http)

    post_events(http, business_event(key), business_event(key, event_id="2"), many_problems)

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, REJECTED, endpoint="events", reason="invalid") == 3
    assert _moved(before, after, RECEIVED, endpoint="events") == 3
    assert _moved(before, after, ACCEPTED, endpoint="events") == 0


def test_a_body_that_is_not_a_batch_counts_once_as_rejected_malformed(http: httpx.Client) -> None:
    before = MetricsSnapshot.scrape(http)

    http.post("/v1/events", content=b"{oops", headers={"content-type": "application/json"})
    http.post("/v1/traces", content=b"\xff\xff", headers={"content-type": "application/x-protobuf"})

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, REJECTED, endpoint="events", reason="malformed") == 1
    assert _moved(before, after, REJECTED, endpoint="traces", reason="malformed") == 1


def test_each_accepted_request_is_timed_in_the_batch_latency_histogram(http: httpx.Client) -> None:
    before = MetricsSnapshot.scrape(http)

    post_events(http, business_event(unique_key("OPP")))

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, f"{BATCH_LATENCY}_count", endpoint="events") == 1
    assert _moved(before, after, f"{BATCH_LATENCY}_sum", endpoint="events") > 0
    assert _moved(before, after, f"{BATCH_LATENCY}_bucket", endpoint="events", le="+Inf") == 1


def test_each_store_write_is_timed_in_the_insert_latency_histogram(http: httpx.Client) -> None:
    before = MetricsSnapshot.scrape(http)

    post_events(http, business_event(unique_key("OPP")))

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, f"{INSERT_LATENCY}_count") == 1
    assert _moved(before, after, f"{INSERT_LATENCY}_sum") > 0


def test_an_otlp_export_moves_the_span_and_event_counters(http: httpx.Client) -> None:
    trace_id = new_trace_id()
    business = {"threadline.correlation_id": unique_key("OPP"), "threadline.workflow": "quote-to-cash"}
    request = otlp_json_request(
        "netsuite",
        otlp_json_span(trace_id, new_span_id(), "erp.order.created", attributes=business),
        otlp_json_span(
            trace_id, new_span_id(), "erp.order.rejected", attributes={**business, "threadline.attempt": 0}
        ),
        otlp_json_span(trace_id, new_span_id(), "SELECT 1"),
    )
    protobuf = json_format.ParseDict(otlp_json_request("netsuite"), ExportTraceServiceRequest())
    before = MetricsSnapshot.scrape(http)

    http.post("/v1/traces", json=request)
    http.post(
        "/v1/traces", content=protobuf.SerializeToString(), headers={"content-type": "application/x-protobuf"}
    )

    after = MetricsSnapshot.scrape(http)
    assert _moved(before, after, SPANS) == 3
    assert _moved(before, after, RECEIVED, endpoint="traces") == 2
    assert _moved(before, after, ACCEPTED, endpoint="traces") == 1
    assert _moved(before, after, REJECTED, endpoint="traces", reason="invalid") == 1
    assert _moved(before, after, f"{BATCH_LATENCY}_count", endpoint="traces") == 2


def test_store_busy_time_is_counted_by_who_held_the_store(http: httpx.Client) -> None:
    """Under load the operator sees whose work kept the store busy, ingest's writer apart from API
    reads."""
    before = MetricsSnapshot.scrape(http)

    post_events(http, business_event(unique_key("OPP")))
    http.get("/api/overview").raise_for_status()

    after = MetricsSnapshot.scrape(http)
    for holder in ("threadline-store-writer", "api"):
        assert _moved(before, after, "threadline_store_statements_total", holder=holder) >= 1
        assert _moved(before, after, "threadline_store_busy_seconds_total", holder=holder) > 0
