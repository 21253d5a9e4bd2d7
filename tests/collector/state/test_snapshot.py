"""The state snapshot gives the answers the rules derive from the rollups, whatever changed since
it was last kept: new events, links between transactions, other definitions, a moment in the past.

Each check asks the real embedded engine the same question twice, once through the snapshot and
once deriving every transaction again (the path a store without a snapshot takes), and compares
every row: the operations queue (every state, open only) and the overview's figures.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.support.traffic import NOW, Traffic
from threadline.collector.alerts.evaluate import gauge_rows
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.cursors import AFTER_EVERY_ID
from threadline.collector.schema import EARLIEST, LATEST, parse_batch
from threadline.collector.state import dimensions, snapshot
from threadline.collector.state.forecast import forecast_parameters
from threadline.collector.state.overview import FIGURES, TREND, WORKFLOW, grouping_sets, in_range
from threadline.collector.state.rules import AMOUNT_AT_RISK, summary_sql
from threadline.collector.state.transactions import LIST, RESOLVE_KEY, find
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import Workflows, load

TENANT = "acme"
QUEUE: dict[str, Any] = {
    "workflow": "",
    "states": [],
    "system": "",
    "breached": -1,
    "with_violations": False,
    "attention": False,
    "with_mismatches": False,
    "with_duplicates": False,
    "dimension_filters": [],
    "since": EARLIEST,
    "until": LATEST,
    "after_time": LATEST,
    "after_id": "",
    "limit": 100_000,
    "predicted_breach": False,
    **forecast_parameters(None),
}
OVERVIEW: dict[str, Any] = {
    "workflow": "",
    "since": EARLIEST,
    "until": LATEST,
    "dimension_filters": [],
    "trend_bucket": 300,
}
TRANSACTION_IDS = "SELECT transaction_id FROM transaction_rollups WHERE tenant = {tenant:String}"
MOMENTS = (NOW, NOW - dt.timedelta(hours=20), NOW + dt.timedelta(hours=3))


def send(store: Store, workflows: Workflows, events: list[dict[str, Any]]) -> None:
    # Events from further ahead than the collector allows are refused at ingest: not sent here either.
    allowed = events
    parsed = parse_batch(orjson.dumps({"events": allowed}))
    with store.writing():  # as ingest's writer does
        store_events(store, TENANT, parsed, "json", workflows.key_rules)


def answers(store: Store, workflows: Workflows, as_of: dt.datetime, snapshot_path: bool) -> dict[str, Any]:
    """Every row of the queue (all, and open only) and of the overview, by one path or the other."""
    found: dict[str, Any] = {}
    for name, template, bound, open_only in (
        ("queue", LIST, QUEUE, False),
        ("open queue", LIST, {**QUEUE, "states": ["stuck", "in_progress"]}, True),
        ("overview", FIGURES, OVERVIEW, False),
        ("trend", TREND, OVERVIEW, False),
    ):
        summary, parameters = snapshot.summary(store, workflows, TENANT, as_of, open_only=open_only, **bound)
        assert "transaction_states" in summary  # the snapshot is kept with these definitions
        if not snapshot_path:
            summary = summary_sql(open_only=open_only)
        sql = template.format(
            summary=summary,
            source=summary,
            in_range=in_range(),
            amount_at_risk=AMOUNT_AT_RISK,
            **grouping_sets([WORKFLOW]),
        )
        rows = store.rows(sql.replace("{in_slice}", dimensions.condition(())), parameters)  # LIST: no slice
        found[name] = sorted(rows, key=repr)
    return found


def same(expected: Any, got: Any, column: str = "") -> bool:
    """Equal; sums of floats up to their order (the two paths add rows in different orders), and a
    transaction's systems in any order (a set: the API sorts it)."""
    if column == "systems":
        return sorted(expected) == sorted(got)
    if isinstance(expected, float) and isinstance(got, float):
        return math.isclose(expected, got, rel_tol=1e-12) or (math.isnan(expected) and math.isnan(got))
    if isinstance(expected, list | tuple) and isinstance(got, list | tuple):
        return len(expected) == len(got) and all(same(e, g) for e, g in zip(expected, got, strict=True))
    return type(expected) is type(got) and expected == got


def assert_same(store: Store, workflows: Workflows) -> None:
    for as_of in MOMENTS:
        derived = answers(store, workflows, as_of, snapshot_path=False)
        kept = answers(store, workflows, as_of, snapshot_path=True)
        for name, rows in derived.items():
            assert len(kept[name]) == len(rows), f"{name} as of {as_of}"
            for expected, got in zip(rows, kept[name], strict=True):
                differing = {k: (v, got[k]) for k, v in expected.items() if not same(v, got[k], k)}
                assert not differing, f"{name} as of {as_of}: {differing}"
        assert derived["queue"], "the traffic made transactions"


def test_reads_through_the_snapshot_answer_as_the_rules_do_from_the_rollups(store: Store) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=20261127)
    batches = [
        [e for n in range(start, start + 60) for e in traffic.transaction(n)] for start in (0, 60, 120)
    ]

    send(store, workflows, batches[0])
    assert snapshot.keep(store, workflows, TENANT) >= 1  # the first pass: every transaction
    assert_same(store, workflows)  # every state read from the snapshot

    send(store, workflows, batches[1])  # new transactions, and events of kept ones: links too
    assert_same(store, workflows)  # the changed ones derived again at read time

    assert snapshot.keep(store, workflows, TENANT) == 1  # one statement: what changed
    send(store, workflows, batches[2])
    assert_same(store, workflows)


def test_a_read_derives_again_only_what_changed_since_the_snapshot_or_after_its_moment(store: Store) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=5)
    send(store, workflows, [e for n in range(40) for e in traffic.transaction(n)])
    snapshot.keep(store, workflows, TENANT)

    quiet, _ = snapshot.summary(store, workflows, TENANT, NOW + dt.timedelta(days=30))
    assert "transaction_rollups" not in quiet and "FROM events" not in quiet  # the snapshot's rows alone
    earlier, _ = snapshot.summary(store, workflows, TENANT, NOW - dt.timedelta(hours=20))
    assert "FROM events FINAL" in earlier and "received_at" not in earlier  # events after as_of only

    send(store, workflows, [e for n in range(40, 50) for e in traffic.transaction(n)])
    busy, _ = snapshot.summary(store, workflows, TENANT, NOW + dt.timedelta(days=30))
    assert "received_at" in busy  # what changed since the mark, derived at read time
    assert_same(store, workflows)


def test_a_lookup_reads_the_snapshot_row_of_an_unchanged_transaction_as_its_events_derive_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=9)
    send(store, workflows, [e for n in range(25) for e in traffic.transaction(n)])
    snapshot.keep(store, workflows, TENANT)
    keys = sorted(
        {row["transaction_id"] for row in store.rows("SELECT transaction_id FROM transaction_rollups")}
    )
    moments = (NOW, NOW - dt.timedelta(hours=20), NOW + dt.timedelta(days=30))
    with monkeypatch.context() as events_path:
        events_path.setattr(snapshot, "unchanged", lambda *_: False)
        from_events = {(key, at): find(store, workflows, TENANT, key, at) for key in keys for at in moments}

    read_from_snapshot = 0
    for (key, at), expected in from_events.items():
        resolved = store.rows(RESOLVE_KEY, {"tenant": TENANT, "key": key})
        read_from_snapshot += bool(resolved) and snapshot.unchanged(
            store, workflows, TENANT, resolved[0]["keys"], at
        )
        assert find(store, workflows, TENANT, key, at) == expected, f"{key} as of {at}"
    assert read_from_snapshot > len(keys)  # as of the far future every one; as of earlier, some

    again = traffic.transaction(0)
    send(store, workflows, again)  # changed since the snapshot
    resolved = store.rows(RESOLVE_KEY, {"tenant": TENANT, "key": again[0]["correlation_id"]})
    assert not snapshot.unchanged(store, workflows, TENANT, resolved[0]["keys"], NOW + dt.timedelta(days=30))


def test_other_definitions_are_derived_again_before_the_snapshot_is_read(
    store: Store, tmp_path: Path
) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=7)
    send(store, workflows, [e for n in range(80) for e in traffic.transaction(n)])
    snapshot.keep(store, workflows, TENANT)
    # Stuck after 10 minutes instead of an hour, no SLA: every state the snapshot holds is stale.
    text = EXAMPLE_WORKFLOWS.read_text().replace("stuck_after: 1h", "stuck_after: 10m")
    text = text.replace("sla: 4h", "sla: 30m")
    assert text != EXAMPLE_WORKFLOWS.read_text()
    changed_file = tmp_path / "workflows.yaml"
    changed_file.write_text(text)
    changed = load(changed_file)

    summary, _ = snapshot.summary(store, changed, TENANT, NOW)
    assert "transaction_states" not in summary  # not read until derived with these definitions
    snapshot.keep(store, changed, TENANT)
    assert_same(store, changed)


def kept(store: Store, seed: int) -> tuple[Workflows, Traffic, snapshot.StateKeeper]:
    """20 transactions written and kept by a keeper's pass; the traffic writes more."""
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=seed)
    send(store, workflows, [e for n in range(20) for e in traffic.transaction(n)])
    keeper = snapshot.StateKeeper(store, lambda: workflows, interval=1.0, registry=CollectorRegistry())
    keeper.keep_every_tenant()
    return workflows, traffic, keeper


def test_the_keeper_passes_only_after_a_write_or_with_other_definitions(store: Store) -> None:
    workflows, traffic, keeper = kept(store, seed=11)
    with Store.timed() as idle:
        keeper.keep_every_tenant()
    assert idle.statements == 0  # nothing was written since: not even the changed set is read

    send(store, workflows, [e for n in range(20, 30) for e in traffic.transaction(n)])
    with Store.timed() as after_a_write:
        keeper.keep_every_tenant()
    assert after_a_write.statements > 0
    assert_same(store, workflows)


def test_a_read_catches_the_snapshot_up_with_every_write_before_it_once(store: Store) -> None:
    workflows, traffic, keeper = kept(store, seed=13)
    send(store, workflows, [e for n in range(20, 30) for e in traffic.transaction(n)])
    later = NOW + dt.timedelta(days=30)
    assert "received_at" in snapshot.summary(store, workflows, TENANT, later)[0]

    keeper.catch_up(TENANT)
    assert "received_at" not in snapshot.summary(store, workflows, TENANT, later)[0]  # the snapshot's rows
    assert_same(store, workflows)
    with Store.timed() as again:
        keeper.catch_up(TENANT)
        keeper.keep_every_tenant()  # the background's pass: nothing the read left it to keep
    assert again.statements == 1  # the list of tenants, nothing derived


def test_the_keeper_spaces_its_passes_so_that_they_take_at_most_a_quarter_of_the_time() -> None:
    # A quick pass: the next one comes when the interval is over.
    assert snapshot.pause_after(0.5, 2.0) == pytest.approx(1.5)
    # A slow pass (steady ingest changes something every second): three times its length, so that
    # ingest keeps the store and a core for three quarters of the time and the next pass derives more at once.
    assert snapshot.pause_after(3.0, 2.0) == pytest.approx(9.0)
    assert 3.0 / (3.0 + snapshot.pause_after(3.0, 2.0)) == pytest.approx(snapshot.KEEPER_SHARE)


def test_the_keeper_waits_for_a_pause_in_ingest_but_no_longer_than_its_limit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflows, traffic, keeper = kept(store, seed=17)
    monkeypatch.setattr(snapshot, "INGEST_PAUSE_S", 1.0)  # each write below takes far less (~50 ms)
    stop = threading.Event()

    def ingest() -> None:  # back to back, as a burst of batches is written
        for n in itertools.count(30):
            if stop.is_set():
                return
            send(store, workflows, traffic.transaction(n))

    sender = threading.Thread(target=ingest)
    sender.start()
    try:
        began = time.monotonic()
        keeper._after_ingest_pauses(began + 2.5)  # ingest never pauses: the pass waits its limit
        assert time.monotonic() - began >= 2.5
        threading.Timer(2.0, stop.set).start()
        began = time.monotonic()
        keeper._after_ingest_pauses(began + 60)  # ingest pauses after 2 s: the pass goes then
        assert 2.0 <= time.monotonic() - began < 15
    finally:
        stop.set()
        sender.join()


def test_a_read_over_every_transaction_is_whole_once_the_snapshot_is_kept_and_adds_up_to_its_slices(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=5)
    send(store, workflows, [e for n in range(60) for e in traffic.transaction(n)])
    ids = sorted(row["transaction_id"] for row in store.rows(TRANSACTION_IDS, {"tenant": TENANT}))
    halves = [{"low": "", "high": ids[30]}, {"low": ids[30], "high": AFTER_EVERY_ID}]
    monkeypatch.setattr(snapshot, "slices", lambda store, tenant: halves)

    assert snapshot.read_parts(store, workflows, TENANT) == [(snapshot.SLICE, part) for part in halves]
    sliced = gauge_rows(store, workflows, TENANT, NOW)
    snapshot.keep(store, workflows, TENANT)
    assert snapshot.read_parts(store, workflows, TENANT) == [("", {})]
    assert gauge_rows(store, workflows, TENANT, NOW) == sliced
    assert sum(row.transactions for row in sliced) > len(ids) / 2  # both halves counted (links aside)
