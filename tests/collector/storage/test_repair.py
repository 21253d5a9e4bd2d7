"""An insert cut off between its events and its views' rows is completed at the next start, once.

The state a kill leaves is made for real: the view is dropped while a batch is stored (its events
are in, its aggregates are not), then created again, as the engine has it after a restart.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from threadline.collector.schema import parse_batch
from threadline.collector.state.transactions import ListFilters, page
from threadline.collector.storage import Store, migrations
from threadline.collector.storage.repair import repair
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import Workflows, load

WORKFLOWS = """
workflows:
  orders:
    steps:
      - {name: received, system: shop}
      - {name: paid, system: stripe}
      - {name: shipped, system: erp}
"""
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

ROLLUP_COUNTS = "SELECT transaction_id, sum(event_count) FROM transaction_rollups GROUP BY transaction_id"
TRACE_COUNTS = (
    "SELECT transaction_id, length(groupArrayArray(trace)) FROM workflow_traces GROUP BY transaction_id"
)


@pytest.fixture()
def workflows(tmp_path: Path) -> Workflows:
    path = tmp_path / "workflows.yaml"
    path.write_text(WORKFLOWS)
    return load(path)


def event(key: str, step: str, system: str, minutes: int) -> dict[str, Any]:
    return {
        "event_id": f"{key}-{step}",
        "correlation_id": key,
        "workflow": "orders",
        "step": step,
        "system": system,
        "timestamp": (NOW - dt.timedelta(minutes=minutes)).isoformat(),
    }


def send(store: Store, workflows: Workflows, events: list[dict[str, Any]]) -> None:
    with store.writing():
        store_events(store, "", parse_batch(orjson.dumps({"events": events})), "json", workflows.key_rules)


@contextmanager
def without_view(store: Store, view: migrations.Table) -> Iterator[None]:
    """Sends in this block store their events while ``view``'s materialized view is gone: the state
    a kill between an insert's events and its view's rows leaves; the view is back afterwards."""
    for statement in migrations.drop_table(f"{view.name}_mv", None):
        store.command(statement)
    yield
    made = migrations.rollups_view if view is migrations.TRANSACTION_ROLLUPS else migrations.traces_view
    for statement in made(None):
        store.command(statement)


def counts(store: Store, sql: str) -> dict[str, int]:
    return {transaction: count for transaction, count in store.query(sql).result_rows}


def queue_counts(store: Store, workflows: Workflows) -> dict[str, int]:
    items, _, _ = page(store, workflows, "", ListFilters(), NOW, 1000, None)
    return {item.correlation_id: item.event_count for item in items}


def test_events_whose_views_were_cut_off_are_aggregated_once(store: Store, workflows: Workflows) -> None:
    send(store, workflows, [event("A", "received", "shop", 30), event("B", "received", "shop", 30)])
    with without_view(store, migrations.TRANSACTION_ROLLUPS):
        # The cut insert: A's second event, and C's only one.
        send(store, workflows, [event("A", "paid", "stripe", 20), event("C", "received", "shop", 20)])
    with without_view(store, migrations.WORKFLOW_TRACES):
        send(store, workflows, [event("B", "paid", "stripe", 10)])  # rollups written, traces not
    send(store, workflows, [event("A", "shipped", "erp", 5)])  # stored whole after the cut
    assert queue_counts(store, workflows) == {"A": 2, "B": 2}  # what the queue showed: C lost
    assert counts(store, TRACE_COUNTS) == {"A": 3, "B": 1, "C": 1}

    repaired = repair(store, until_us=time.time_ns() // 1000)

    assert repaired == 3  # A's and C's rollups, B's trace
    assert queue_counts(store, workflows) == {"A": 3, "B": 2, "C": 1}
    assert counts(store, ROLLUP_COUNTS) == {"A": 3, "B": 2, "C": 1}
    assert counts(store, TRACE_COUNTS) == {"A": 3, "B": 2, "C": 1}
    # Again, as every start does: nothing is counted twice.
    assert repair(store, until_us=time.time_ns() // 1000) == 0
    assert counts(store, ROLLUP_COUNTS) == {"A": 3, "B": 2, "C": 1}
    assert counts(store, TRACE_COUNTS) == {"A": 3, "B": 2, "C": 1}


def test_inserts_after_the_start_are_left_to_their_own_views(store: Store, workflows: Workflows) -> None:
    """A repair that runs late (on a server) looks only at inserts begun before the start."""
    started = time.time_ns() // 1000
    with without_view(store, migrations.TRANSACTION_ROLLUPS):
        send(store, workflows, [event("LATE", "received", "shop", 5)])
    assert repair(store, until_us=started) == 0
    assert counts(store, ROLLUP_COUNTS) == {}


def test_a_store_whose_views_predate_the_record_of_inserts_is_left_alone(tmp_path: Path) -> None:
    """Events aggregated before migration 15 hold no batches: not to be aggregated again."""
    store = Store(f"chdb://{tmp_path / 'old'}").open(migrate=False)
    try:
        store.migrate(up_to=migrations.BATCHES_RECORDED - 1)
        path = tmp_path / "workflows.yaml"
        path.write_text(WORKFLOWS)
        workflows = load(path)
        send(store, workflows, [event("OLD", "received", "shop", 30)])
        store.migrate()
        assert repair(store, until_us=time.time_ns() // 1000) == 0
        assert counts(store, ROLLUP_COUNTS) == {"OLD": 1}
    finally:
        store.close()


def test_each_insert_of_a_batch_split_by_month_is_repaired_on_its_own(
    store: Store, workflows: Workflows, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch over more months than one INSERT may touch is several INSERTs: each has its version,
    so a cut after the first one is told apart from it."""
    store.partitions_per_insert = 1  # a month per INSERT, as a years-long replay meets the server's limit
    insert = store.insert
    events_inserts = []

    def cut_before_the_second(table: str, rows: Any, columns: Any) -> None:
        if table == "events":
            events_inserts.append(len(rows))
            if len(events_inserts) == 2:
                for statement in migrations.drop_table(f"{migrations.TRANSACTION_ROLLUPS.name}_mv", None):
                    store.command(statement)
        insert(table, rows, columns)

    monkeypatch.setattr(store, "insert", cut_before_the_second)
    send(store, workflows, [event("M", "received", "shop", 40 * 24 * 60), event("M", "paid", "stripe", 10)])
    monkeypatch.undo()
    for statement in migrations.rollups_view(None):
        store.command(statement)
    assert events_inserts == [1, 1]
    assert counts(store, ROLLUP_COUNTS) == {"M": 1}

    assert repair(store, until_us=time.time_ns() // 1000) == 1
    assert counts(store, ROLLUP_COUNTS) == {"M": 2}
