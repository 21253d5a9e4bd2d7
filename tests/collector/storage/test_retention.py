"""Retention: a tenant's transactions whose every event is older than its days are deleted whole,
from every answer (lookup, queue, overview, through the state snapshot too); nothing younger is lost.

A real embedded store; only "now" is chosen by the test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import new_span_id, new_trace_id, otlp_json_request, otlp_json_span
from tests.support.polling import eventually
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.schema import parse_batch
from threadline.collector.state import snapshot
from threadline.collector.state.overview import overview
from threadline.collector.state.transactions import ListFilters, find, page
from threadline.collector.storage import Store
from threadline.collector.storage.retention import RetentionPolicy, expire, sweep
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import Workflows, load

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
POLICY = RetentionPolicy.of({"default": 90, "acme": 30}, ttl_days=None)


@pytest.fixture()
def workflows() -> Workflows:
    return load(EXAMPLE_WORKFLOWS)


def event(
    key: str, days_ago: float, step: str = "quote_created", now: dt.datetime = NOW, **extra: Any
) -> dict[str, Any]:
    moment = now - dt.timedelta(days=days_ago)
    return {
        "event_id": f"{key}-{step}-{days_ago}",
        "correlation_id": key,
        "workflow": "quote_to_cash",
        "step": step,
        "system": "salesforce",
        "timestamp": moment.isoformat(),
        **extra,
    }


def nanoseconds(now: dt.datetime, days_ago: float) -> int:
    return int((now - dt.timedelta(days=days_ago)).timestamp()) * 1_000_000_000


def send(store: Store, workflows: Workflows, tenant: str, events: list[dict[str, Any]]) -> None:
    with store.writing():  # as ingest's writer does
        store_events(
            store, tenant, parse_batch(orjson.dumps({"events": events})), "json", workflows.key_rules
        )


def queue(store: Store, workflows: Workflows, tenant: str) -> list[str]:
    items, total, _ = page(store, workflows, tenant, ListFilters(), NOW, 1000, None)
    assert total == len(items)
    return sorted(item.correlation_id for item in items)


def events_of(store: Store, workflows: Workflows, tenant: str, key: str) -> list[str] | None:
    found = find(store, workflows, tenant, key, NOW)
    return None if found is None else sorted(e.event_id for e in found.events)


def fill(store: Store, workflows: Workflows) -> None:
    send(store, workflows, "acme", [event("OLD", 45), event("OLD", 40, "quote_approved")])
    send(store, workflows, "acme", [event("LIVE", 45), event("LIVE", 10, "quote_approved")])
    # ABSORBED's events are old, but it belongs to MERGED now, which is not: kept.
    send(store, workflows, "acme", [event("ABSORBED", 50)])
    send(store, workflows, "acme", [event("MERGED", 5, aliases={"crm.merged": "ABSORBED"})])
    # Both old and linked: gone together, with their link.
    send(store, workflows, "acme", [event("OLD-ABSORBED", 60)])
    send(store, workflows, "acme", [event("OLD-MERGED", 55, aliases={"crm.merged": "OLD-ABSORBED"})])
    # Another tenant keeps 90 days.
    send(store, workflows, "globex", [event("G-OLD", 45), event("G-OLDER", 100)])


def test_a_transaction_whose_every_event_expired_is_gone_from_every_answer(
    store: Store, workflows: Workflows
) -> None:
    fill(store, workflows)
    for tenant in ("acme", "globex"):
        snapshot.keep(store, workflows, tenant)  # the snapshot holds them all before the deletion
    assert queue(store, workflows, "acme") == ["LIVE", "MERGED", "OLD", "OLD-MERGED"]

    deleted = sweep(store, POLICY, NOW)

    assert deleted == {"acme": 3, "globex": 1}  # OLD, OLD-MERGED and OLD-ABSORBED; G-OLDER
    assert queue(store, workflows, "acme") == ["LIVE", "MERGED"]
    assert queue(store, workflows, "globex") == ["G-OLD"]
    for gone in ("OLD", "OLD-MERGED", "OLD-ABSORBED"):
        assert events_of(store, workflows, "acme", gone) is None
    assert events_of(store, workflows, "globex", "G-OLDER") is None
    # Nothing of a transaction still alive is lost, however old.
    assert events_of(store, workflows, "acme", "LIVE") == ["LIVE-quote_approved-10", "LIVE-quote_created-45"]
    assert events_of(store, workflows, "acme", "ABSORBED") == [
        "ABSORBED-quote_created-50",
        "MERGED-quote_created-5",
    ]
    totals = overview(store, workflows, "acme", "", None, None, NOW).totals
    assert totals.transactions == 2
    # What is stored agrees: no row of a deleted transaction is left in any table.
    for table in ("events", "transaction_rollups", "workflow_traces", "transaction_states", "aliases"):
        left = store.query(
            f"SELECT count() FROM {table} WHERE tenant = 'acme' AND transaction_id LIKE 'OLD%'"
        ).result_rows[0][0]
        assert left == 0, table
    assert (
        store.query("SELECT count() FROM transaction_links FINAL WHERE tenant = 'acme'").result_rows[0][0]
        == 1
    )


def test_a_second_pass_deletes_nothing_more_and_a_later_one_what_expired_since(
    store: Store, workflows: Workflows
) -> None:
    fill(store, workflows)
    sweep(store, POLICY, NOW)
    assert sweep(store, POLICY, NOW) == {"acme": 0, "globex": 0}
    assert sweep(store, POLICY, NOW + dt.timedelta(days=21)) == {"acme": 1, "globex": 0}  # LIVE
    assert queue(store, workflows, "acme") == ["MERGED"]


def test_the_attribute_counts_of_the_hours_before_the_cutoff_go_by_their_hour(
    store: Store, workflows: Workflows
) -> None:
    fill(store, workflows)

    sweep(store, POLICY, NOW)

    # Schema drift's hourly counts expire by their hour, not with a transaction: LIVE is kept whole,
    # its 45-day-old hour of counts is not.
    kept = store.rows(
        "SELECT tenant, dateDiff('day', hour, {now:DateTime('UTC')}) AS days_ago, sum(events) AS events "
        "FROM attribute_presence WHERE attribute = '' GROUP BY tenant, days_ago ORDER BY tenant, days_ago",
        {"now": NOW},
    )
    assert [(row["tenant"], row["days_ago"], row["events"]) for row in kept] == [
        ("acme", 5, 1),
        ("acme", 10, 1),
        ("globex", 45, 1),
    ]


def test_deletion_goes_in_bounded_batches_until_none_is_left(store: Store, workflows: Workflows) -> None:
    send(store, workflows, "acme", [event(f"OLD-{number}", 40) for number in range(7)])
    assert expire(store, "acme", NOW - dt.timedelta(days=30), batch=3) == 7
    assert queue(store, workflows, "acme") == []


def test_without_days_nothing_is_deleted(store: Store, workflows: Workflows) -> None:
    fill(store, workflows)
    assert sweep(store, RetentionPolicy(), NOW) == {}
    assert len(queue(store, workflows, "acme")) == 4


def test_the_policy_takes_the_tenants_days_else_the_default_else_ttl_days() -> None:
    assert (POLICY.days("acme"), POLICY.days("globex")) == (30, 90)
    assert RetentionPolicy.of({"acme": 30}, ttl_days=60).days("globex") == 60
    assert RetentionPolicy.of({}, ttl_days=None).days("acme") is None
    assert POLICY.kept_since("acme", NOW) == NOW - dt.timedelta(days=30)


def test_a_collector_applies_its_tenants_days_and_says_how_far_back_data_goes(
    new_collector: Callable[..., CollectorProcess],
) -> None:
    collector = new_collector(
        {"THREADLINE_RETENTION_DAYS": "default=30", "THREADLINE_SHARED_READ_SECONDS": "0"}
    )
    collector.start()
    now = dt.datetime.now(dt.UTC)
    sent = [
        event("OLD", 45, now=now),
        event("OLD", 40, "quote_approved", now=now),
        event("LIVE", 40, now=now),
        event("LIVE", 2, "quote_approved", now=now),
    ]
    traces = {days_ago: new_trace_id() for days_ago in (45, 2)}  # technical spans go by their start
    spans = [
        otlp_json_span(trace, new_span_id(), "POST /quotes", start_unix_nano=nanoseconds(now, days_ago))
        for days_ago, trace in traces.items()
    ]
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        assert http.post("/v1/events", json={"events": sent}).status_code == 200
        assert http.post("/v1/traces", json=otlp_json_request("cpq", *spans)).status_code == 200
        retention = http.get("/api/retention").json()
        assert retention["days"] == 30
        kept_since = dt.datetime.fromisoformat(retention["kept_since"])
        assert abs(kept_since - (now - dt.timedelta(days=30))) < dt.timedelta(minutes=1)
        collector.stop()
        collector.start()  # the keeper's first pass runs as the collector starts, then hourly

        def old_is_gone() -> bool:
            return http.get("/api/transactions/OLD").status_code == 404

        eventually(old_is_gone, what="the expired transaction to be deleted")
        eventually(
            lambda: http.get(f"/api/traces/{traces[45]}").status_code == 404, what="the old trace deleted"
        )
        assert http.get(f"/api/traces/{traces[2]}").status_code == 200
        queue = http.get("/api/transactions").json()
        assert [item["correlation_id"] for item in queue["items"]] == ["LIVE"]
        assert len(http.get("/api/transactions/LIVE").json()["events"]) == 2
