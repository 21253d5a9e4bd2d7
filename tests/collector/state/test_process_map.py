"""Which directly-follows edges of the process map the workflow's definition expects, and which
variants conform to it.

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


def transaction(start_minute: int, *steps: str, window: dt.datetime = WINDOW) -> list[dict[str, Any]]:
    key = unique_key("OPP")
    return [
        business_event(
            key,
            step=step,
            system=SYSTEMS.get(step, "zendesk"),
            timestamp=(window + dt.timedelta(minutes=start_minute + n)).isoformat(),
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


CONFORMANCE_WINDOW = dt.datetime(2022, 8, 3, 7, tzinfo=dt.UTC)  # no other test starts a transaction then
ENTITLED = "support.entitlement.created"  # completes quote-to-cash


def test_the_map_says_which_share_of_transactions_followed_the_definition_and_names_each_deviation(
    http: httpx.Client,
) -> None:
    won, validated, quoted, ordered, billed = SYSTEMS
    happy = (won, validated, quoted, ordered, billed, ENTITLED)
    billed_early = (won, validated, quoted, billed, ordered, ENTITLED)
    started = [
        happy,
        happy,
        happy,
        billed_early,
        billed_early,
        (won, quoted, ordered, billed, ENTITLED),  # completed without erp.customer.validated
        (won, quoted),  # open: judged on what it did so far
        (won, validated, quoted, billed),  # open, and billed before the order
    ]
    events = [
        event
        for n, steps in enumerate(started)
        for event in transaction(10 * n, *steps, window=CONFORMANCE_WINDOW)
    ]
    assert post_events(http, *events).status_code == 200

    def conformance(minutes: int) -> tuple[dict[str, Any], dict[tuple[str, ...], dict[str, Any]]]:
        window = {
            "since": CONFORMANCE_WINDOW.isoformat(),
            "until": (CONFORMANCE_WINDOW + dt.timedelta(minutes=minutes)).isoformat(),
        }
        response = http.get("/api/workflows/quote-to-cash/map", params=window)
        assert response.status_code == 200, response.text
        process = response.json()
        return process["conformance"], {tuple(v["steps"]): v for v in process["variants"]}

    result, variants = conformance(90)
    assert result["judged"]
    assert (result["transactions"], result["conforming"], result["deviating"], result["open"]) == (8, 4, 4, 2)
    assert result["conforming_share"] == 0.5
    assert "Open transactions (2" in result["note"]
    assert [(d["description"], d["transactions"], d["variants"]) for d in result["deviations"]] == [
        (f"{billed} before {ordered}", 3, 2),
        (f"{validated} missing", 1, 1),
    ]
    assert (variants[happy]["outcome"], variants[happy]["conforming"]) == ("completed", True)
    assert (variants[won, quoted]["outcome"], variants[won, quoted]["conforming"]) == ("open", True)
    assert variants[billed_early]["deviations"] == [
        {
            "kind": "out_of_order",
            "step": billed,
            "other": ordered,
            "description": f"{billed} before {ordered}",
        }
    ]
    # The map's time filter narrows the verdicts too: the first three started within 25 minutes.
    result, _ = conformance(25)
    assert (result["transactions"], result["conforming_share"], result["deviations"]) == (3, 1.0, [])


def test_a_workflow_without_a_definition_has_a_map_but_no_conformance_and_says_why(
    http: httpx.Client,
) -> None:
    workflow = unique_key("imported")
    event = business_event(unique_key("IMP"), workflow=workflow, timestamp=CONFORMANCE_WINDOW.isoformat())
    assert post_events(http, event).status_code == 200

    response = http.get(f"/api/workflows/{workflow}/map")

    assert response.status_code == 200, response.text
    process = response.json()
    assert process["transactions"] == 1
    assert process["conformance"]["judged"] is False
    assert process["conformance"]["note"] == (
        f"{workflow} has no definition: there is no order to judge its transactions by."
    )
    assert process["variants"][0]["conforming"] is None and process["variants"][0]["deviations"] == []
