"""Which directly-follows edges of the process map the workflow's definition expects.

quote-to-cash (workflows.example.yaml) runs erp.customer.validated and cpq.quote.approved in
parallel, both after crm.opportunity.won, and erp.order.created after both. Each test's
transactions start in a window of their own on the shared collector, and the map is read for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.support.ingest import business_event, post_events, unique_key

WINDOW = dt.datetime(2022, 8, 3, 4, tzinfo=dt.UTC)  # no other test starts a transaction then
SYSTEMS = {
    "crm.opportunity.won": "salesforce",
    "erp.customer.validated": "netsuite",
    "cpq.quote.approved": "cpq",
    "erp.order.created": "netsuite",
    "billing.subscription.activated": "stripe",
}


def transaction(start_minute: int, *steps: str) -> list[dict[str, Any]]:
    key = unique_key("OPP")
    return [
        business_event(
            key,
            step=step,
            system=SYSTEMS[step],
            timestamp=(WINDOW + dt.timedelta(minutes=start_minute + n)).isoformat(),
        )
        for n, step in enumerate(steps)
    ]


def test_parallel_steps_follow_each_other_as_expected_in_either_order_and_going_back_is_not(
    http: httpx.Client,
) -> None:
    won, validated, quoted, ordered, billed = SYSTEMS
    response = post_events(
        http,
        *transaction(0, won, validated, quoted, ordered),
        *transaction(10, won, quoted, validated, ordered),
        *transaction(20, won, validated, validated, quoted, ordered),  # validated twice: a retry
        *transaction(30, won, ordered, validated),  # ordered before its prerequisites
        *transaction(40, won, quoted, billed),  # billed with no order in between
    )
    assert response.status_code == 200, response.text

    window = {"since": WINDOW.isoformat(), "until": (WINDOW + dt.timedelta(hours=1)).isoformat()}
    process = http.get("/api/workflows/quote-to-cash/map", params=window).json()

    assert process["transactions"] == 5
    expected = {(edge["source"], edge["target"]): edge["expected"] for edge in process["edges"]}
    assert expected == {
        (won, validated): True,
        (won, quoted): True,
        (validated, quoted): True,  # parallel: neither must come after the other
        (quoted, validated): True,
        (validated, validated): True,
        (validated, ordered): True,  # its other prerequisite came earlier: nothing skipped
        (quoted, ordered): True,
        (won, ordered): False,  # skips validated and quoted, which must come in between
        (ordered, validated): False,  # back to a step that must come before
        (quoted, billed): False,  # skips erp.order.created
    }
