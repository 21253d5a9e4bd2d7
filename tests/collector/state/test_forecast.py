"""Forecasts: learned from the workflow's completed transactions, applied to the open ones, on the
real embedded engine at a fixed moment (the clock is the ``now`` and ``as_of`` given).

Every order goes order.received -> order.approved (55 to 65 minutes later) -> order.shipped (70 to
80 minutes after approval, which completes it); the SLA is 2h.
"""

from __future__ import annotations

import datetime as dt
import statistics
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
