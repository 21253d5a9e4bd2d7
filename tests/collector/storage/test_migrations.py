"""A store written before the engine kept aggregates migrates in the background, answering right all along.

The store is built as schema version 3 left it: events whose transaction ids were rewritten when an
alias linked them, no aggregates. A collector started on it applies migration 4 (views, rollups, a
backfill plan) and fills the aggregates from the old events in the background. Its answers must
equal those of a collector on a fresh store that received the same events over HTTP, before the
backfill is done and after; and a slice filled twice (a crash between its insert and its mark) must
not count twice.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.test_api import Q2C as STEPS
from tests.support.collector_process import CollectorProcess
from threadline.collector.storage import Store, migrations
from threadline.collector.storage.backfill import PENDING, AggregateBackfill
from threadline.collector.storage.columns import EVENT_COLUMNS, SPAN_COLUMNS
from threadline.collector.storage.writes import ALIAS_COLUMNS

pytestmark = pytest.mark.slow

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def wire_events(transactions: int) -> list[dict[str, Any]]:
    """Quote-to-cash transactions at every stage; a third keyed partly by their sales order."""
    events = []
    for number in range(transactions):
        key, order = f"MIG-{number:03d}", f"SO-MIG-{number:03d}"
        start = NOW - dt.timedelta(hours=30) + dt.timedelta(minutes=7 * number)
        for index, (step, system) in enumerate(STEPS[: 1 + number % len(STEPS)]):
            event: dict[str, Any] = {
                "event_id": f"mig-{number}-{index}",
                "correlation_id": order if number % 3 == 0 and index >= 3 else key,
                "workflow": "quote-to-cash",
                "step": step,
                "system": system,
                "timestamp": (start + dt.timedelta(minutes=20 * index, seconds=number)).isoformat(),
                "status": "error" if (number + index) % 11 == 0 else "ok",
                "amount": 1000.0 + number,
                "currency": "USD",
            }
            if number % 3 == 0 and index == 1:
                event["aliases"] = {"erp.sales_order": order}
            events.append(event)
    return events


def old_store(path: Path, version: int) -> Store:
    """A store with the schema as the collector of that version left it."""
    store = Store(f"chdb://{path}")
    store._connect()
    for statement in migrations.version_table(None):
        store.command(statement)
    for number, statements in migrations.migrations():
        if number > version:
            break
        for statement in statements:
            store.command(statement)
        store.insert("schema_migrations", [[number]], ["version"])
    return store


def write_version_3_store(path: Path, events: list[dict[str, Any]]) -> None:
    """The store as the collector of schema version 3 left it, re-linked events included."""
    store = old_store(path, 3)
    added_later = {"seq", "error_type", "error_stacktrace"}  # by migrations 4 and 7
    columns = [column for column in EVENT_COLUMNS if column not in added_later]
    received = NOW - dt.timedelta(hours=1)
    rows, aliases = [], []
    for event in events:
        key = event["correlation_id"]
        transaction = key.replace("SO-", "") if key.startswith("SO-") else key
        record = {
            "tenant": "",
            "transaction_id": transaction,
            "correlation_id": key,
            "event_id": event["event_id"],
            "workflow": event["workflow"],
            "step": event["step"],
            "system": event["system"],
            "status": event["status"],
            "timestamp": dt.datetime.fromisoformat(event["timestamp"]),
            "received_at": received,
            "duration_ms": None,
            "attempt": None,
            "error_kind": "",  # as the JSON ingest stores an error without an error object
            "error_message": "",
            "amount": event["amount"],
            "currency": event["currency"],
            "aliases": event.get("aliases", {}),
            "attributes": {},
            "trace_id": "",
            "span_id": "",
            "source": "json",
            "version": 1,
        }
        rows.append([record[column] for column in columns])
        for kind, alias in event.get("aliases", {}).items():
            aliases.append(["", alias, kind, transaction, key, received, 1])
    store.insert("events", rows, columns)
    store.insert("aliases", aliases, ALIAS_COLUMNS)
    store.close()


def answers(client: httpx.Client, keys: list[str]) -> dict[str, Any]:
    moment = {"as_of": NOW.isoformat()}
    past = {"as_of": (NOW - dt.timedelta(hours=20)).isoformat()}
    result: dict[str, Any] = {
        "queue": client.get("/api/transactions", params={**moment, "limit": 500}).json(),
        "queue_past": client.get("/api/transactions", params={**past, "limit": 500}).json(),
        "overview": client.get("/api/overview", params=moment).json(),
        "map": client.get("/api/workflows/quote-to-cash/map").json(),
    }
    for key in keys:
        answer = client.get(f"/api/transactions/{key}", params=moment).json()
        for event in answer.get("events", []):
            event.pop("received_at")
        result[key] = answer
    return result


def without_clock(value: Any) -> Any:
    """The answers less what each collector's own clock puts in them, and the forecasts: a model is
    learned from the rollups, which an old store has only once its backfill is done (README)."""
    if isinstance(value, dict):
        return {
            k: without_clock(v) for k, v in value.items() if k not in ("as_of", "received_at", "forecast")
        }
    if isinstance(value, list):
        return [without_clock(v) for v in value]
    return value


def test_an_old_store_answers_as_a_fresh_one_during_and_after_its_backfill(tmp_path: Path) -> None:
    events = wire_events(60)
    old_dir = tmp_path / "old" / "store"
    old_dir.mkdir(parents=True)
    write_version_3_store(old_dir, events)
    env = {"THREADLINE_ALERT_INTERVAL": "0"}
    fresh = CollectorProcess(store_dir=tmp_path / "fresh" / "store", env=env, isolated=True).start()
    # First a collector that leaves the backfill to another (it reads the events meanwhile).
    waiting = CollectorProcess(store_dir=old_dir, env={**env, "THREADLINE_BACKFILL": "off"}, isolated=True)
    backfilled = CollectorProcess(store_dir=old_dir, env=env, isolated=True)
    keys = ["MIG-000", "SO-MIG-003", "MIG-004", "MIG-005", "SO-MIG-057", "MIG-059"]
    try:
        with httpx.Client(base_url=fresh.url, timeout=60) as client:
            assert client.post("/v1/events", json={"events": events}).status_code == 200
            expected = without_clock(answers(client, keys))
        assert expected["queue"]["total"] == 60
        with httpx.Client(base_url=waiting.start().url, timeout=60) as client:
            assert without_clock(answers(client, keys)) == expected
        waiting.stop()
        with httpx.Client(base_url=backfilled.start().url, timeout=60) as client:
            deadline = time.monotonic() + 60
            while "every stored event" not in backfilled.log():
                assert time.monotonic() < deadline, backfilled.log()[-3000:]
                time.sleep(0.2)
            assert "aggregate backfill slice 1 of 1" in backfilled.log()
            time.sleep(5)  # the collector re-reads the backfill's progress every few seconds
            assert without_clock(answers(client, keys)) == expected
        backfilled.stop()
    finally:
        for collector in (fresh, waiting, backfilled):
            collector.stop()

    # A slice filled again (its mark lost to a crash) is dropped by the engine, not counted twice.
    store = Store(f"chdb://{old_dir}").open()
    try:
        counted = "SELECT sum(event_count) FROM transaction_rollups"
        assert store.query(counted).result_rows[0][0] == len(events)
        done = store.rows("SELECT slice, slices, cutoff FROM aggregate_backfill FINAL")
        assert done and not store.rows(PENDING)
        AggregateBackfill(store)._fill(done[0])
        assert store.query(counted).result_rows[0][0] == len(events)
    finally:
        store.close()


def test_spans_stored_before_migration_6_read_as_they_were_stored(tmp_path: Path) -> None:
    """Their attribute values were stored as text, without links or scope: they come back so."""
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    store = old_store(store_dir, 4)
    added = {column.split()[0] for column in migrations.SPAN_COLUMNS_OF_MIGRATION_6}
    columns = [column for column in SPAN_COLUMNS if column not in added]
    started = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    span = {
        "tenant": "",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "parent_span_id": "",
        "name": "GET /customers",
        "service": "netsuite",
        "kind": "client",
        "start_time": started,
        "end_time": started + dt.timedelta(milliseconds=40),
        "duration_ms": 40.0,
        "status_code": "error",
        "status_message": "timed out",
        "attributes": {"http.response.status_code": "504"},
        "resource": {"service.name": "netsuite"},
        "events": '[{"name": "exception", "time_unix_nano": 1793611800000000000, '
        '"attributes": {"exception.type": "TimeoutError", "attempt": 2}}]',
        "received_at": started,
    }
    store.insert("spans", [[span[column] for column in columns]], columns)
    store.close()
    collector = CollectorProcess(store_dir=store_dir, isolated=True).start()
    try:
        response = httpx.get(f"{collector.url}/api/traces/{span['trace_id']}", timeout=30)
    finally:
        collector.stop()

    assert response.status_code == 200, response.text
    [stored] = response.json()["spans"]
    assert stored["attributes"] == {"http.response.status_code": "504"}
    assert stored["resource"] == {"service.name": "netsuite"}
    assert stored["events"] == [
        {
            "name": "exception",
            "time": "2026-11-02T09:30:00Z",
            "attributes": {"exception.type": "TimeoutError", "attempt": 2},
        }
    ]
    assert stored["links"] == []
    assert stored["scope"] == {"name": "", "version": "", "attributes": {}}
