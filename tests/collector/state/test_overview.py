"""The overview's value at risk (``GET /api/overview``), as README's "Value at risk" defines it."""

from __future__ import annotations

import datetime as dt
import random

import httpx

from tests.support.ingest import business_event, post_events, unique_key
from threadline.collector.state.overview import listed


def test_a_stuck_credit_adds_its_size_to_the_value_at_risk_and_never_cancels_an_invoice(
    http: httpx.Client,
) -> None:
    # A window of its own in the shared store: transactions started in this second only.
    started = dt.datetime(2022, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=random.randrange(365 * 86400))
    order, credit = unique_key("OPP"), unique_key("CASE")
    sent = post_events(
        http,
        business_event(order, timestamp=started.isoformat(), amount=48_000, currency="USD"),
        business_event(
            credit,
            workflow="support-credit",
            step="support.credit.requested",
            system="zendesk",
            timestamp=started.isoformat(),
            amount=-500,  # a credit: money going back to the customer
            currency="USD",
        ),
    )
    assert sent.status_code == 200, sent.text
    window = {"since": started.isoformat(), "until": (started + dt.timedelta(seconds=1)).isoformat()}
    stuck_for_a_day = (started + dt.timedelta(days=1)).isoformat()

    overview = http.get("/api/overview", params={**window, "as_of": stuck_for_a_day}).json()

    assert overview["totals"]["stuck"] == 2
    assert overview["totals"]["value_at_risk"] == [{"currency": "USD", "amount": 48_500.0, "transactions": 2}]
    by_workflow = {figures["workflow"]: figures["value_at_risk"] for figures in overview["workflows"]}
    assert by_workflow["support-credit"] == [{"currency": "USD", "amount": 500.0, "transactions": 1}]


def test_groups_are_listed_by_their_transactions_then_by_name() -> None:
    """The same order on every store and every read, whatever order the engine grouped them in."""
    rows = [
        {"grouped": "quote-to-cash", "transactions": 1},
        {"grouped": "customer-onboarding", "transactions": 1},
        {"grouped": "support-credit", "transactions": 2},
    ]

    assert [row["grouped"] for row in listed(rows)] == [
        "support-credit",
        "customer-onboarding",
        "quote-to-cash",
    ]
