"""Schema drift on the real embedded engine: the engine counts which attributes each system's steps
send, per hour, and ``state/drift.py`` finds the attribute a system stopped sending (or started
to), placed at the exact event, with the counts before and since."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from tests.support.ingest import stripe_activation
from threadline.collector.schema import parse_batch
from threadline.collector.state import drift
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import parse

TENANT = "acme"
AS_OF = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
CHANGE = dt.datetime(2026, 11, 20, 14, 2, 30, tzinfo=dt.UTC)  # stripe renames `plan` to `plan_id`
WORKFLOWS = parse(
    "workflows:\n  quote-to-cash:\n    steps:\n      - {name: billing.subscription.activated}\n"
)
STEP = "billing.subscription.activated"


def send(store: Store, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 500):
        parsed = parse_batch(orjson.dumps({"events": events[start : start + 500]}))
        with store.writing():
            store_events(store, TENANT, parsed, "json", WORKFLOWS.key_rules)


def history(before: int, since: int, every: dt.timedelta = dt.timedelta(minutes=10)) -> list[dict[str, Any]]:
    """``before`` activations with a plan up to the change, ``since`` with a plan id after it."""
    events = [
        stripe_activation(n, CHANGE - every * (before - n), plan="Enterprise annual") for n in range(before)
    ]
    events += [
        stripe_activation(before + n, CHANGE + dt.timedelta(minutes=2) * n, plan_id="price_ent_annual")
        for n in range(since)
    ]
    return events


def test_an_attribute_a_system_stopped_sending_is_a_drift_from_the_first_event_without_it(
    store: Store,
) -> None:
    send(store, history(before=400, since=35))

    report = drift.detect(store, TENANT, AS_OF)

    missing = next(d for d in report.drifts if d.kind == "missing")
    assert (missing.system, missing.step, missing.attribute) == ("stripe", STEP, "plan")
    assert missing.since == CHANGE
    assert missing.last_carried == CHANGE - dt.timedelta(minutes=10)
    assert (missing.events_since, missing.carrying_since) == (35, 0)
    # The baseline: the 7 days before the last event that carried it (all 400 are inside it).
    assert (missing.events_before, missing.carrying_before) == (400, 400)
    assert (missing.example.event_id, missing.example.correlation_id) == ("ev-400", "SO-400")
    assert missing.summary == (
        "stripe / billing.subscription.activated: `plan` missing since 2026-11-20 14:02 UTC, "
        "in 100% of 35 events; present in 100.0% of the 400 before"
    )


def test_an_attribute_a_system_started_sending_is_a_drift_from_its_first_event(store: Store) -> None:
    send(store, history(before=400, since=35))

    new = next(d for d in drift.detect(store, TENANT, AS_OF).drifts if d.kind == "new")

    assert (new.attribute, new.since, new.example.event_id) == ("plan_id", CHANGE, "ev-400")
    assert (new.events_since, new.carrying_since, new.events_before) == (35, 35, 400)
    assert "`plan_id` new since 2026-11-20 14:02 UTC, in 100.0% of 35 events" in new.summary


def test_what_every_event_keeps_sending_never_drifts(store: Store) -> None:
    send(store, history(before=400, since=35))

    drifted = {d.attribute for d in drift.detect(store, TENANT, AS_OF).drifts}

    assert drifted == {"plan", "plan_id"}  # not subscription, amount or currency


def test_one_event_carrying_it_again_ends_the_missing_drift(store: Store) -> None:
    events = history(before=400, since=35)
    events.append(stripe_activation(999, CHANGE + dt.timedelta(minutes=75), plan="Enterprise annual"))
    send(store, events)

    kinds = {(d.attribute, d.kind) for d in drift.detect(store, TENANT, AS_OF).drifts}

    # 35 events lacked it, then one had it: the system has not stopped sending it.
    assert ("plan", "missing") not in kinds


def test_too_little_history_is_no_drift(store: Store) -> None:
    send(store, history(before=150, since=35))
    assert drift.detect(store, TENANT, AS_OF).drifts == []  # 150 before: less than a baseline's 200


def test_too_few_events_since_the_change_is_no_drift_yet(store: Store) -> None:
    send(store, history(before=400, since=12))
    assert drift.detect(store, TENANT, AS_OF).drifts == []  # 12 since: fewer than 20


def test_an_attribute_most_events_lacked_before_is_not_missing_when_it_stops(store: Store) -> None:
    events = [
        stripe_activation(
            n, CHANGE - dt.timedelta(minutes=10) * (400 - n), **({"coupon": "X"} if n % 4 == 0 else {})
        )
        for n in range(400)
    ]
    events += [stripe_activation(400 + n, CHANGE + dt.timedelta(minutes=2) * n) for n in range(35)]
    send(store, events)

    assert drift.detect(store, TENANT, AS_OF).drifts == []  # coupon was in 25%: optional, not usual


def test_a_drift_is_shown_for_one_baseline_then_it_is_what_the_system_sends(store: Store) -> None:
    send(store, history(before=400, since=35))

    later = drift.detect(store, TENANT, CHANGE + dt.timedelta(days=7, hours=2))

    assert later.drifts == []
    assert later.baseline_days == 7


def test_the_answer_is_as_of_the_end_of_the_hour_asked_about(store: Store) -> None:
    send(store, history(before=400, since=35))

    assert drift.detect(store, TENANT, CHANGE - dt.timedelta(hours=1)).drifts == []
    # The counts are hourly: at 14:20 the hour 14:00-15:00 counts whole (from now, the same thing).
    assert {d.attribute for d in drift.detect(store, TENANT, CHANGE.replace(minute=20)).drifts} == {
        "plan",
        "plan_id",
    }


def test_the_engine_counts_every_key_once_per_event_with_amount_and_currency(store: Store) -> None:
    send(store, history(before=3, since=2))

    rows = store.rows(
        "SELECT attribute, sum(events) AS events FROM attribute_presence "
        "WHERE tenant = {tenant:String} GROUP BY attribute ORDER BY attribute",
        {"tenant": TENANT},
    )

    assert {row["attribute"]: row["events"] for row in rows} == {
        "": 5,
        "amount": 5,
        "currency": 5,
        "plan": 3,
        "plan_id": 2,
        "subscription": 5,
    }
