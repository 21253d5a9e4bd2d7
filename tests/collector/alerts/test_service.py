"""What an evaluation after the first one measures: what may have changed since the last, not history.

The evaluator runs in-process on a real embedded store, with the test's clock (``as_of``); its
events are stored as ingest stores them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.collector.state.test_snapshot import TENANT, send
from tests.collector.test_api_drift import NOW, STEP, renamed
from tests.collector.test_api_drift import WORKFLOWS as DRIFT_WORKFLOWS
from tests.support.ingest import stripe_activation
from threadline.collector.alerts import records, watches
from threadline.collector.alerts.evaluate import unpaced
from threadline.collector.alerts.service import CHANGED_MARGIN, Alerting, Outcome, Pacer
from threadline.collector.alerts.settings import AlertSettings
from threadline.collector.state import snapshot
from threadline.collector.storage import Store
from threadline.collector.storage.connection import OWN_WORK_NICENESS
from threadline.collector.workflows import Workflows, load

WORKFLOWS = """\
workflows:
  order:
    stuck_after: 30m
    fail_on: [order.cancelled]
    steps:
      - {name: order.received, system: crm}
      - {name: order.booked, system: erp}
      - {name: order.cancelled, system: erp, after: [order.received]}
alerts:
  receivers:
    hook: {type: webhook, url_env: TEST_HOOK_URL}
  rules:
"""
COUNT_RULE = """\
    - {name: failing, when: stuck_or_failed_count_above, threshold: 1, window: 1h, severity: warning,
       receivers: [hook]}
"""
FAILED_RULE = "    - {name: failing, when: failed, severity: warning, receivers: [hook]}\n"


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path / 'store'}").open()
    yield opened
    opened.close()


def definitions(folder: Path, rule: str) -> Workflows:
    (folder / "workflows.yaml").write_text(WORKFLOWS + rule)
    return load(folder / "workflows.yaml")


def order(key: str, now: dt.datetime, *steps: tuple[str, float]) -> list[dict[str, Any]]:
    """Events of one order: each step ``minutes`` before ``now``."""
    systems = {"order.received": "crm", "order.booked": "erp", "order.cancelled": "erp"}
    return [
        {
            "correlation_id": key,
            "workflow": "order",
            "step": step,
            "system": systems[step],
            "timestamp": (now - dt.timedelta(minutes=minutes)).isoformat(),
        }
        for step, minutes in steps
    ]


def test_a_later_evaluation_counts_what_failed_within_the_window_and_reads_no_other_active_transaction(
    store: Store, tmp_path: Path
) -> None:
    workflows = definitions(tmp_path, COUNT_RULE)
    now = dt.datetime.now(dt.UTC)
    send(
        store,
        workflows,
        [
            *order("FAILED-LONG-AGO", now, ("order.received", 200), ("order.cancelled", 180)),
            *order("FAILED-RECENTLY", now, ("order.received", 30), ("order.cancelled", 20)),
            # Stuck since 10 minutes before the first evaluation: the gauges count it.
            *order("STUCK-IN-WINDOW", now, ("order.received", 40)),
        ],
    )
    alerting = Alerting(store, lambda: workflows, CollectorRegistry(), AlertSettings(interval=30))
    first = now + dt.timedelta(minutes=3)
    [fired] = alerting.evaluate(as_of=first).fired
    assert fired.rule == "failing" and fired.transactions == ("FAILED-RECENTLY", "STUCK-IN-WINDOW")

    # Nothing received, resolved or reconciled since: what the next evaluation reads is what time
    # alone may have changed, and what failed within the window: not every transaction active in it.
    later = first + dt.timedelta(minutes=10)
    cursor = alerting._cursors[TENANT]
    assert cursor == first - CHANGED_MARGIN  # it derived every state: what was being stored counts too
    measured = alerting._candidates(TENANT, workflows, later, cursor, [], kept=False, pace=unpaced)
    assert [c.summary.correlation_id for c in measured] == ["FAILED-RECENTLY"]

    # Once it failed longer ago than the window, the count drops to 1 (the stuck one): it resolves.
    [resolved] = alerting.evaluate(as_of=now + dt.timedelta(minutes=45)).resolved
    assert resolved.rule == "failing" and resolved.resolution == "back within the limit"


def test_an_evaluation_reading_the_snapshot_leaves_what_changed_since_its_mark_to_the_next_one(
    store: Store, tmp_path: Path
) -> None:
    workflows = definitions(tmp_path, FAILED_RULE)
    now = dt.datetime.now(dt.UTC)
    send(store, workflows, order("ORDER-1", now, ("order.received", 5)))
    alerting = Alerting(store, lambda: workflows, CollectorRegistry(), AlertSettings(interval=30))
    assert alerting.evaluate(as_of=now).fired == []  # the first: every state derived
    snapshot.keep(store, workflows, TENANT)
    mark = snapshot.read_mark(store, TENANT)
    assert mark is not None

    send(store, workflows, order("ORDER-1", now, ("order.cancelled", 1)))  # it fails after the mark
    assert alerting.evaluate(as_of=now + dt.timedelta(minutes=1)).fired == []
    assert alerting._cursors[TENANT] == mark.covered_until  # what the snapshot holds is evaluated

    snapshot.keep(store, workflows, TENANT)  # the keeper's next pass
    [fired] = alerting.evaluate(as_of=now + dt.timedelta(minutes=2)).fired
    assert (fired.rule, fired.subject) == ("failing", "ORDER-1")

    # Left out again (another event since the mark): not measured, so it keeps firing.
    send(store, workflows, [{**order("ORDER-1", now, ("order.cancelled", 0))[0], "event_id": "again"}])
    assert alerting.evaluate(as_of=now + dt.timedelta(minutes=3)) == Outcome()
    snapshot.keep(store, workflows, TENANT)
    assert alerting.evaluate(as_of=now + dt.timedelta(minutes=4)) == Outcome()  # measured: still failed
    assert [alert.subject for alert in records.firing(store, TENANT).values()] == ["ORDER-1"]


def failing_orders(store: Store, workflows: Workflows, alerting: Alerting, now: dt.datetime) -> None:
    """A first evaluation (the rule starts watching), then ORDER-1 and ORDER-2 fail: both fire.
    ORDER-2 is only a cancellation (not started: another transaction may absorb it)."""
    send(store, workflows, order("ORDER-0", now, ("order.received", 5)))
    assert alerting.evaluate(as_of=now).fired == []
    send(store, workflows, order("ORDER-1", now, ("order.received", 4), ("order.cancelled", 3)))
    send(store, workflows, order("ORDER-2", now, ("order.cancelled", 3)))
    fired = alerting.evaluate(as_of=dt.datetime.now(dt.UTC)).fired
    assert sorted(alert.subject for alert in fired) == ["ORDER-1", "ORDER-2"]


def test_a_firing_alert_is_measured_again_once_its_transaction_changes_a_link_into_another_included(
    store: Store, tmp_path: Path
) -> None:
    workflows = definitions(tmp_path, FAILED_RULE)
    now = dt.datetime.now(dt.UTC)
    alerting = Alerting(store, lambda: workflows, CollectorRegistry(), AlertSettings(interval=30))
    failing_orders(store, workflows, alerting, now)  # the evaluations as of the time they are made
    assert alerting.evaluate(as_of=dt.datetime.now(dt.UTC)) == Outcome()  # nothing new: both still fire

    # ORDER-1 announces ORDER-2 as its alias: ORDER-2 is ORDER-1's from then on, nothing else of
    # ORDER-2 is received, and not every firing alert is measured again yet.
    absorbs = {**order("ORDER-1", now, ("order.received", 0))[0], "aliases": {"erp.order": "ORDER-2"}}
    send(store, workflows, [absorbs])
    [resolved] = alerting.evaluate(as_of=dt.datetime.now(dt.UTC)).resolved
    assert resolved.subject == "ORDER-2"
    assert (
        resolved.resolution == "no transaction has this key any more (it joined another one through an alias)"
    )


def test_once_the_definitions_change_every_firing_alert_is_measured_again(
    store: Store, tmp_path: Path
) -> None:
    in_force = [definitions(tmp_path, FAILED_RULE)]
    alerting = Alerting(store, lambda: in_force[0], CollectorRegistry(), AlertSettings(interval=30))
    now = dt.datetime.now(dt.UTC)
    failing_orders(store, in_force[0], alerting, now)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    assert alerting.evaluate(as_of=later) == Outcome()  # from here on, their events are old news

    # A cancellation no longer fails an order: no event since, yet both alerts resolve.
    (tmp_path / "workflows.yaml").write_text(
        WORKFLOWS.replace("    fail_on: [order.cancelled]\n", "") + FAILED_RULE
    )
    in_force[0] = load(tmp_path / "workflows.yaml")
    resolved = alerting.evaluate(as_of=later + dt.timedelta(minutes=1)).resolved
    assert sorted((alert.subject, alert.resolution) for alert in resolved) == [
        ("ORDER-1", "the transaction completed"),
        ("ORDER-2", "the transaction completed"),
    ]


class Waits:
    """A stop event that is never set, recording how long it was waited on."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waited.append(seconds)
        return False


def test_paced_work_takes_at_most_its_share_of_the_time() -> None:
    now = [0.0]
    stop = Waits()
    pace = Pacer(0.25, stop, quantum_s=0.1, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(10 * Pacer.CHECK_EVERY):
        now[0] += 0.001  # a unit of work: 1 ms
        pace()
    worked = 10 * Pacer.CHECK_EVERY * 0.001
    # A pause after each 0.1 s of work or more (256 units: 0.256 s), three times as long as the work.
    assert stop.waited == pytest.approx([3 * Pacer.CHECK_EVERY * 0.001] * 10)
    assert worked / (worked + sum(stop.waited)) == pytest.approx(0.25)


@pytest.mark.parametrize(("drift_interval", "still_firing"), [(300.0, True), (0.0, False)])
def test_schema_drift_is_looked_for_again_once_its_interval_has_passed(
    store: Store, tmp_path: Path, drift_interval: float, still_firing: bool
) -> None:
    # Drift is judged over hours of events, and a look costs up to 50 statements: between looks,
    # the drifts last found stand.
    (tmp_path / "workflows.yaml").write_text(DRIFT_WORKFLOWS)
    workflows = load(tmp_path / "workflows.yaml")
    send(store, workflows, renamed())  # `plan` stops coming at CHANGE, `plan_id` comes instead
    settings = AlertSettings(interval=30, drift_interval=drift_interval)
    alerting = Alerting(store, lambda: workflows, CollectorRegistry(), settings)
    missing = ("stripe-schema", f"stripe / {STEP} / plan (missing)")
    assert missing in {(alert.rule, alert.subject) for alert in alerting.evaluate(as_of=NOW).fired}

    send(store, workflows, [stripe_activation(400, NOW, plan="Enterprise annual")])  # it comes back
    alerting.evaluate(as_of=NOW + dt.timedelta(seconds=30))
    assert (missing in records.firing(store, TENANT)) is still_firing


def test_the_store_time_histogram_tells_the_first_evaluation_from_the_later_ones(
    store: Store, tmp_path: Path
) -> None:
    workflows = definitions(tmp_path, FAILED_RULE)
    now = dt.datetime.now(dt.UTC)
    send(store, workflows, order("CANCELLED", now, ("order.received", 30), ("order.cancelled", 20)))
    registry = CollectorRegistry()
    alerting = Alerting(store, lambda: workflows, registry, AlertSettings(interval=30))

    def evaluations(reads: str) -> float | None:
        return registry.get_sample_value("threadline_alert_evaluation_seconds_count", {"reads": reads})

    alerting.evaluate(as_of=now)  # the rule is new: every transaction is read once
    assert (evaluations("all"), evaluations("changes")) == (1.0, None)
    alerting.evaluate(as_of=now + dt.timedelta(minutes=1))
    alerting.evaluate(as_of=now + dt.timedelta(minutes=2))
    assert (evaluations("all"), evaluations("changes")) == (1.0, 2.0)


def test_an_evaluation_far_behind_covers_an_interval_of_arrivals_at_a_time(
    store: Store, tmp_path: Path
) -> None:
    workflows = definitions(tmp_path, FAILED_RULE)
    now = dt.datetime.now(dt.UTC)
    alerting = Alerting(store, lambda: workflows, CollectorRegistry(), AlertSettings(interval=30))
    send(store, workflows, order("BOOKED", now, ("order.received", 9), ("order.booked", 8)))
    alerting.evaluate(as_of=now)  # the rule's first evaluation: its watch starts
    # Five minutes behind (the collector was stopped, or its first evaluation took that long), and an
    # order cancelled since.
    behind = now - dt.timedelta(minutes=5)
    watches.save_cursor(store, TENANT, behind)
    alerting._cursors[TENANT] = behind
    send(store, workflows, order("CANCELLED", now, ("order.received", 3), ("order.cancelled", 2)))

    cursors, fired = [], []
    for step in range(1, 6):
        fired = alerting.evaluate(as_of=now + dt.timedelta(seconds=step)).fired
        cursors.append(alerting._cursors[TENANT])
        if fired:
            break
    # 90 s of arrivals per evaluation (an interval, and the minute of margin a derived one leaves),
    # one right after the other, until it is less than that behind: that one reads every arrival
    # since, the cancelled order's too, and it fires (its cursor, as always, short of the margin).
    assert cursors[:2] == [behind + dt.timedelta(seconds=90), behind + dt.timedelta(seconds=180)]
    assert cursors[2] == now + dt.timedelta(seconds=3) - CHANGED_MARGIN
    assert len(cursors) == 3 and [alert.subject for alert in fired] == ["CANCELLED"]
    assert not alerting._behind


class PriorityNotingStore(Store):
    """The store, noting the priority (ClickHouse's os_thread_priority, 0 unset) of each read."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.priorities: list[int] = []

    @contextmanager
    def _call(self, read: bool = False) -> Iterator[tuple[Any, dict[str, Any]]]:
        with super()._call(read) as (connection, settings):
            if read:
                self.priorities.append(settings.get("os_thread_priority", 0))
            yield connection, settings


def test_a_cycle_reads_at_the_api_priority_while_a_first_evaluation_is_niced(tmp_path: Path) -> None:
    store = PriorityNotingStore(f"chdb://{tmp_path / 'store'}")
    store.open()
    workflows = definitions(tmp_path, FAILED_RULE)
    now = dt.datetime.now(dt.UTC)
    send(store, workflows, order("CANCELLED", now, ("order.received", 30), ("order.cancelled", 20)))
    alerting = Alerting(store, lambda: workflows, CollectorRegistry(), AlertSettings(interval=30))

    def priorities(as_of: dt.datetime) -> list[int]:
        store.priorities = []
        with Store.background(), Store.beside_ingest():  # as the evaluator's thread runs
            alerting.evaluate(as_of=as_of)
        noted, store.priorities = store.priorities, []
        return noted

    first = priorities(now)  # every transaction read: the dashboard's reads get the cores first
    send(store, workflows, order("LATER", now, ("order.received", 1), ("order.cancelled", 0)))
    cycle = priorities(now + dt.timedelta(minutes=1))  # what changed: small, and on-call waits for it
    store.close()
    assert set(first) == {OWN_WORK_NICENESS}
    # The tenants' list is read before the evaluator knows what each needs; the rest, at once.
    assert cycle[0] == OWN_WORK_NICENESS and len(cycle) > 3 and set(cycle[1:]) == {0}
