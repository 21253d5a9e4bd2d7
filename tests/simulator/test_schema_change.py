"""The simulator's vendor change: eight hours before the end of history, Stripe's subscription
events send ``plan_id`` instead of ``plan``; stored on the real engine, the collector's schema drift
finds both, from the first event after the change."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import orjson

from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.schema import parse_batch
from threadline.collector.state import drift
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import load
from threadline.simulator.faults import SCHEMA_CHANGE_BEFORE_ANCHOR_S, SlowSchedule, schema_changes
from threadline.simulator.history import History
from threadline.simulator.ids import KeyFactory
from threadline.simulator.planner import PlannedEvent, Planner
from threadline.simulator.scenarios import scenarios_for

STEP = "billing.subscription.activated"
ANCHOR = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
CHANGE = ANCHOR - dt.timedelta(seconds=SCHEMA_CHANGE_BEFORE_ANCHOR_S)


def activations() -> list[PlannedEvent]:
    """Stripe's activations in three days of history at 2,000 transactions a day, as delivered."""
    definitions = load(EXAMPLE_WORKFLOWS)
    anchor = ANCHOR.timestamp()
    planner = Planner(
        scenarios_for(definitions), SlowSchedule("7", ("stripe",)), schema_changes(anchor, definitions)
    )
    keys = KeyFactory(random.Random("7/keys"))
    return [
        event
        for timeline in History(planner, "7", anchor, days=3, per_day=2000).traffic()
        if timeline.spec.workflow == "quote-to-cash"
        for event in planner.materialize(timeline, keys).events
        if event.step == STEP and event.deliver_at <= anchor and not event.redelivery
    ]


def test_stripe_sends_plan_id_instead_of_plan_from_three_hours_before_the_end() -> None:
    events = activations()
    change = CHANGE.timestamp()
    before = [e.attributes for e in events if e.at < change]
    since = [e.attributes for e in events if e.at >= change]
    assert len(before) > 1000 and len(since) > 20
    assert all("plan" in a and "plan_id" not in a for a in before)
    assert all("plan_id" in a and "plan" not in a for a in since)
    assert {a["plan_id"] for a in since} <= {"professional_annual", "enterprise_annual", "enterprise_3_year"}


def test_the_collector_finds_the_change_as_two_drifts(tmp_path: Path) -> None:
    events = activations()
    wire = [
        {
            "correlation_id": e.correlation_id,
            "event_id": e.event_id,
            "workflow": e.workflow,
            "step": e.step,
            "system": e.system,
            "timestamp": dt.datetime.fromtimestamp(e.at, dt.UTC).isoformat(),
            "attributes": dict(e.attributes),
        }
        for e in events
    ]
    store = Store(f"chdb://{tmp_path / 'store'}").open()
    try:
        for start in range(0, len(wire), 1000):
            with store.writing():
                batch = parse_batch(orjson.dumps({"events": wire[start : start + 1000]}))
                store_events(store, "default", batch, "json")
        found = {(d.attribute, d.kind): d for d in drift.detect(store, "default", ANCHOR).drifts}
    finally:
        store.close()

    assert set(found) == {("plan", "missing"), ("plan_id", "new")}
    first_after = min(e.at for e in events if e.at >= CHANGE.timestamp())
    assert abs(found["plan", "missing"].since.timestamp() - first_after) < 1e-6  # stored to the microsecond
    assert found["plan", "missing"].events_since == sum(e.at >= CHANGE.timestamp() for e in events)
