"""Forecasts: learned from the workflow's completed transactions, applied to the open ones, on the
real embedded engine at a fixed moment (the clock is the ``now`` and ``as_of`` given).

Every order goes order.received -> order.approved (55 to 65 minutes later) -> order.shipped (70 to
80 minutes after approval, which completes it); the SLA is 2h. A claim is filed, then paid: stuck
when unpaid for 30 minutes, its SLA 4h.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from threadline.collector.schema import parse_batch
from threadline.collector.state import forecast, transactions
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import parse

TENANT = "acme"
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
WINDOW_S = 7 * 86400.0
WORKFLOWS = parse(
    """
workflows:
  orders:
    sla: 2h
    stuck_after: 1d
    complete_on: [order.shipped]
    steps:
      - {name: order.received, system: shop}
      - {name: order.approved, system: erp}
      - {name: order.shipped, system: wms}
  returns:
    sla: 1h
    steps:
      - {name: return.requested, system: shop}
      - {name: return.refunded, system: stripe}
  claims:
    sla: 4h
    stuck_after: 30m
    complete_on: [claim.paid]
    steps:
      - {name: claim.filed, system: portal}
      - {name: claim.paid, system: erp}
"""
)


def event(key: str, step: str, at: dt.datetime, workflow: str = "orders") -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": workflow,
        "step": step,
        "system": "x",
        "timestamp": at.isoformat(),
    }


def send(store: Store, events: list[dict[str, Any]]) -> None:
    with store.writing():
        store_events(
            store, TENANT, parse_batch(orjson.dumps({"events": events})), "json", WORKFLOWS.key_rules
        )


def approval_minutes(number: int) -> int:
    return 55 + number % 11


def shipping_minutes(number: int) -> int:
    return 70 + (number * 7) % 11


def completed_history(store: Store, count: int) -> None:
    """``count`` orders completed in the hours before NOW."""
    events = []
    for number in range(count):
        received = NOW - dt.timedelta(hours=12) + dt.timedelta(minutes=10 * number)
        approved = received + dt.timedelta(minutes=approval_minutes(number))
        shipped = approved + dt.timedelta(minutes=shipping_minutes(number))
        key = f"DONE-{number:03d}"
        events += [
            event(key, "order.received", received),
            event(key, "order.approved", approved),
            event(key, "order.shipped", shipped),
        ]
    send(store, events)


def open_orders(store: Store) -> None:
    send(
        store,
        [
            # approved 40 minutes ago, 100 minutes into its 2h SLA: waits on the shipping
            event("SOON", "order.received", NOW - dt.timedelta(minutes=100)),
            event("SOON", "order.approved", NOW - dt.timedelta(minutes=40)),
            # just received: waits on the approval
            event("FRESH", "order.received", NOW - dt.timedelta(minutes=10)),
            # a workflow nothing completed in yet
            event("NEW", "return.requested", NOW - dt.timedelta(minutes=10), workflow="returns"),
        ],
    )


def close(got: dt.datetime | None, expected: dt.datetime) -> bool:
    """Equal to the millisecond (the engine adds microseconds, Python rounds them)."""
    return got is not None and abs((got - expected).total_seconds()) < 0.001


def detail(store: Store, key: str, model: forecast.ForecastModel) -> Any:
    found = transactions.find(store, WORKFLOWS, TENANT, key, NOW, model)
    assert found is not None
    return found.summary.forecast


def test_the_eta_is_the_median_remaining_time_of_the_orders_completed_from_the_same_step(
    store: Store,
) -> None:
    completed_history(store, 25)
    open_orders(store)
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    soon = detail(store, "SOON", model)

    shipping = statistics.median(shipping_minutes(n) for n in range(25))
    assert close(soon.eta, NOW - dt.timedelta(minutes=40) + dt.timedelta(minutes=shipping))
    assert soon.breach_expected  # its SLA ends in 20 minutes; shipping takes over an hour
    assert soon.lead_seconds == pytest.approx(20 * 60)
    assert "order.shipped usually takes 1h15 (p50)" in soon.reason
    assert "SLA ends in 20 min" in soon.reason


def test_the_wait_so_far_counts_an_order_is_compared_with_those_that_waited_as_long(store: Store) -> None:
    completed_history(store, 44)
    send(
        store,
        [event("SLOW", "order.received", NOW - dt.timedelta(minutes=62))],  # waits on its approval 62 min
    )
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    slow = detail(store, "SLOW", model)

    position = model.position("orders", "order.approved")
    assert position is not None and len(position.waits) > 1
    waited = max(wait for wait in position.waits if wait <= 62 * 60)
    left = [
        (approval_minutes(n) + shipping_minutes(n)) * 60 - waited
        for n in range(44)
        if approval_minutes(n) * 60 >= waited
    ]
    assert waited == position.waits[-1]  # the last threshold: its median, less the wait since
    assert close(slow.eta, NOW + dt.timedelta(seconds=statistics.median(left) - (62 * 60 - waited)))
    # not the median from when it became due, which it has already waited through most of
    assert not close(slow.eta, NOW - dt.timedelta(minutes=62) + dt.timedelta(seconds=position.remaining_p50))


def test_an_order_waiting_longer_than_any_before_it_is_given_their_median_from_now(store: Store) -> None:
    completed_history(store, 44)
    # Waits on its approval for 5 hours: every order before it was approved within the hour.
    send(store, [event("STALLED", "order.received", NOW - dt.timedelta(hours=5))])
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    stalled = detail(store, "STALLED", model)

    position = model.position("orders", "order.approved")
    assert position is not None
    last = position.waits[-1]
    left = [
        (approval_minutes(n) + shipping_minutes(n)) * 60 - last
        for n in range(44)
        if approval_minutes(n) * 60 >= last
    ]
    # History says no more about so long a wait: not "now" (the median used up long ago), but the
    # median remaining from the last threshold, counted from now.
    assert close(stalled.eta, NOW + dt.timedelta(seconds=statistics.median(left)))


def test_too_little_history_gives_no_forecast_and_says_why(store: Store) -> None:
    completed_history(store, 5)
    open_orders(store)
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    fresh = detail(store, "FRESH", model)
    new = detail(store, "NEW", model)

    assert fresh.eta is None and not fresh.breach_expected
    assert fresh.reason == (
        "no forecast: 5 completed orders transactions waited on order.approved recently, 20 needed"
    )
    assert new.eta is None
    assert "0 completed returns transactions" in new.reason


def test_only_transactions_completed_before_the_moment_teach_the_model(store: Store) -> None:
    completed_history(store, 25)
    open_orders(store)

    before_any_completed = forecast.learn(store, WORKFLOWS, TENANT, NOW - dt.timedelta(hours=10), WINDOW_S)

    assert not any(position.usable for position in before_any_completed.positions.values())


def test_a_question_as_of_a_past_moment_is_forecast_with_what_was_known_then(store: Store) -> None:
    completed_history(store, 25)
    open_orders(store)
    forecasts = forecast.Forecasts(store, lambda: WORKFLOWS, WINDOW_S, 0, clock=lambda: NOW)
    earlier = NOW - dt.timedelta(hours=10)

    current, then = forecasts.model(TENANT), forecasts.model(TENANT, earlier)

    assert current.learned_at == NOW and any(p.usable for p in current.positions.values())
    assert then.learned_at == earlier and not any(p.usable for p in then.positions.values())
    assert forecasts.model(TENANT, earlier) is then  # kept: a page asks as of one moment repeatedly
    assert forecasts.model(TENANT, NOW - dt.timedelta(seconds=10)) is current  # that is now


def test_the_queue_lists_the_soonest_predicted_breach_first(store: Store) -> None:
    completed_history(store, 25)
    open_orders(store)
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    def keys(**filters: Any) -> list[str]:
        chosen = transactions.ListFilters(states=("in_progress", "stuck"), **filters)
        items, _, _ = transactions.page(store, WORKFLOWS, TENANT, chosen, NOW, 10, None, model)
        return [item.correlation_id for item in items]

    assert keys(order="predicted_breach") == ["SOON", "FRESH", "NEW"]
    assert keys(order="predicted_breach", predicted_breach=True) == ["SOON", "FRESH"]
    assert keys() == ["NEW", "FRESH", "SOON"]  # otherwise newest activity first (ties: by key, descending)


def claims(store: Store, paid_after_minutes: Mapping[str, float | None], filed: dt.datetime) -> None:
    events = []
    for key, minutes in paid_after_minutes.items():
        events.append(event(key, "claim.filed", filed, workflow="claims"))
        if minutes is not None:
            events.append(event(key, "claim.paid", filed + dt.timedelta(minutes=minutes), workflow="claims"))
    send(store, events)


def paid_claims(store: Store) -> None:
    """25 claims paid 10 minutes after they were filed, hours ago: the position's history."""
    for number in range(25):
        claims(store, {f"PAID-{number:02d}": 10}, NOW - dt.timedelta(hours=12, minutes=-10 * number))


def test_a_stuck_claim_whose_like_never_completed_has_no_eta_and_is_expected_to_breach(store: Store) -> None:
    paid_claims(store)
    claims(store, {f"LOST-{n:02d}": None for n in range(12)}, NOW - dt.timedelta(days=3))  # never paid
    claims(store, {"STALLED": None}, NOW - dt.timedelta(minutes=50))  # stuck 20 min; SLA ends in 3h10
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    stalled = detail(store, "STALLED", model)

    # the 12 lost claims and STALLED itself, open while seen
    assert model.stuck["claims"] == forecast.Stuck("claims", history=13, completed=0, median=None)
    assert stalled.eta is None and stalled.completion_expected is False
    assert stalled.breach_expected and stalled.lead_seconds == pytest.approx(190 * 60)
    # the 25 paid claims say 10 minutes from filing; that says nothing of one that stopped moving
    assert stalled.reason == (
        "stuck: of the 13 claims transactions stuck recently, 0 completed later; "
        "not expected to complete without intervention, SLA ends in 3h10"
    )


def test_a_stuck_claim_whose_like_mostly_completed_is_given_their_median_from_becoming_stuck(
    store: Store,
) -> None:
    paid_claims(store)
    # 12 claims paid 2h after they were filed: stuck after 30 min, completed 1h30 after that
    claims(store, {f"LATE-{n:02d}": 120 for n in range(12)}, NOW - dt.timedelta(days=1))
    claims(store, {"STALLED": None}, NOW - dt.timedelta(minutes=50))  # stuck for 20 minutes
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    stalled = detail(store, "STALLED", model)

    assert model.stuck["claims"] == forecast.Stuck("claims", history=13, completed=12, median=90 * 60)
    assert stalled.completion_expected is True and not stalled.breach_expected
    assert close(stalled.eta, NOW + dt.timedelta(minutes=70))
    assert stalled.reason.startswith(
        "stuck: of the 13 claims transactions stuck recently, 12 completed later, "
        "half of them within 1h30 of becoming stuck; expected to complete in 1h10"
    )


def test_fewer_stuck_than_needed_leave_a_stuck_claim_to_its_position(store: Store) -> None:
    paid_claims(store)
    lost = {f"LOST-{n:02d}": None for n in range(forecast.MIN_STUCK_HISTORY - 2)}  # with STALLED: 1 short
    claims(store, lost, NOW - dt.timedelta(days=3))
    claims(store, {"STALLED": None}, NOW - dt.timedelta(minutes=50))
    model = forecast.learn(store, WORKFLOWS, TENANT, NOW, WINDOW_S)

    stalled = detail(store, "STALLED", model)

    assert stalled.completion_expected is True and stalled.eta is not None
    assert stalled.reason.startswith("claim.paid usually takes 10 min (p50)")


def episode(completes_after: float | None = None, seen_for: float | None = None) -> forecast.Episode:
    return forecast.Episode(0.0, completes_after=completes_after, seen_for=seen_for)


def test_the_stuck_median_counts_those_still_open_while_seen_and_failed_ones_as_never_completing() -> None:
    completed = [episode(completes_after=t) for t in (1.0, 2.0, 3.0)]
    # three still open, seen for 10: after 1, 2 and 3 completed, half are left (6 -> 5/6 -> 4/6 -> 3/6)
    assert forecast.kaplan_meier_median([*completed, *[episode(seen_for=10.0)] * 3]) == 3.0
    # seen only briefly, they leave the count early: the three completions are all there is
    assert forecast.kaplan_meier_median([*completed, *[episode(seen_for=0.5)] * 3]) == 2.0
    # two more that failed never complete: 5/8 are left after the three completions
    assert (
        forecast.kaplan_meier_median([*completed, *[episode(seen_for=10.0)] * 3, episode(), episode()])
        is None
    )
