"""The overload benchmark's arithmetic: a failed page load is the slowest, the alert histogram read."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from bench.overload import ALERT_HISTOGRAM, AlertCycles, Call, alert_cycles, load_time, p95
from threadline.collector.metrics import LATENCY_BUCKETS


def test_a_page_load_lasts_from_its_first_call_sent_to_its_last_answered() -> None:
    calls = [
        Call("/api/workflows", 10.0, 10.5, 200),
        Call("/api/overview", 10.5, 11.0, 200),
        Call("/api/transactions", 11.0, 12.25, 200),
    ]
    assert load_time(calls) == 2.25


def test_a_page_load_with_a_refused_or_unanswered_call_failed() -> None:
    assert (
        load_time([Call("/api/overview", 10.0, 10.1, 200), Call("/api/overview", 10.1, 10.2, 429)])
        == math.inf
    )
    assert load_time([Call("/api/overview", 10.0, 10.1, 503)]) == math.inf
    assert (
        load_time([Call("/api/overview", 10.0, 10.1, 200), Call("/api/overview", 10.1, None, None)])
        == math.inf
    )


def test_the_p95_counts_failed_loads_as_the_slowest() -> None:
    answered = [float(n) for n in range(1, 20)]  # 1 s to 19 s
    assert p95([*answered, 0.5]) == 18.0  # 20 loads: the 19th fastest
    assert p95([*answered, math.inf]) == 19.0  # one failure in 20 is within the 5 %
    assert p95([*answered[1:], math.inf, math.inf]) == math.inf  # two are not
    assert p95([]) == math.inf  # no load at all is no figure


def test_alert_cycles_over_five_seconds_come_from_the_evaluation_histogram() -> None:
    registry = CollectorRegistry()
    cycles = Histogram(
        ALERT_HISTOGRAM, "store time per cycle", ["reads"], buckets=LATENCY_BUCKETS, registry=registry
    )
    for seconds in (0.4, 3.0, 5.0, 7.0, 12.0):
        cycles.labels(reads="changes").observe(seconds)
    cycles.labels(reads="all").observe(20.5)  # a first evaluation: reported apart
    assert alert_cycles(generate_latest(registry).decode()) == AlertCycles(
        cycles=5, over=2, first=1, first_seconds=20.5
    )


def test_a_collector_without_the_evaluation_histogram_has_it_not_exported() -> None:
    registry = CollectorRegistry()
    Counter("threadline_events_received", "events", registry=registry).inc()
    assert alert_cycles(generate_latest(registry).decode()) is None
