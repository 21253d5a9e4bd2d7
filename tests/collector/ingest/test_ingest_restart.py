"""What a collector acknowledged is stored: it outlives the process, and a re-send is still a duplicate.

Each test restarts its own collector on the same store (a stop with SIGTERM, or SIGKILL).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import (
    MetricsSnapshot,
    business_event,
    event_count,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    post_events,
    unique_key,
)

pytestmark = pytest.mark.slow


def _restart(collector: CollectorProcess, how: str) -> None:
    """Stop (SIGTERM, a clean shutdown) or kill (SIGKILL) the collector, then start it on the same store."""
    if how == "stop":
        collector.stop()
    else:
        collector.kill()
    collector.start()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_acknowledged_events_and_spans_outlive_a_restart(
    new_collector: Callable[..., CollectorProcess], how: str
) -> None:
    collector = new_collector().start()
    key, trace_id = unique_key("OPP"), new_trace_id()
    events = [business_event(key, event_id=f"{key}-{number}") for number in range(50)]
    spans = otlp_json_request("netsuite", otlp_json_span(trace_id, new_span_id(), "SELECT sales_order"))
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        assert post_events(http, *events).json() == {"accepted": 50, "duplicates": 0, "warnings": []}
        assert http.post("/v1/traces", json=spans).status_code == 200

    _restart(collector, how)

    with httpx.Client(base_url=collector.url, timeout=30) as http:
        assert event_count(http, key) == 50
        assert len(http.get(f"/api/traces/{trace_id}").json()["spans"]) == 1


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_an_event_sent_again_after_a_restart_is_stored_once(
    new_collector: Callable[..., CollectorProcess], how: str
) -> None:
    collector = new_collector().start()
    key, trace_id, span_id = unique_key("OPP"), new_trace_id(), new_span_id()
    event = business_event(key, event_id=f"{key}-won")
    span = otlp_json_span(
        trace_id,
        span_id,
        "erp.order.created",
        attributes={"threadline.correlation_id": key, "threadline.workflow": "quote-to-cash"},
    )
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        post_events(http, event)
        http.post("/v1/traces", json=otlp_json_request("netsuite", span))

    _restart(collector, how)

    with httpx.Client(base_url=collector.url, timeout=30) as http:
        assert post_events(http, event).json() == {"accepted": 0, "duplicates": 1, "warnings": []}
        assert http.post("/v1/traces", json=otlp_json_request("netsuite", span)).status_code == 200
        assert event_count(http, key) == 2  # the JSON event and the span's event, once each
        assert len(http.get(f"/api/traces/{trace_id}").json()["spans"]) == 1
        metrics = MetricsSnapshot.scrape(http)
        assert metrics.value("threadline_events_duplicates_dropped_total", endpoint="events") == 1
        assert metrics.value("threadline_events_duplicates_dropped_total", endpoint="traces") == 1
