"""The systems report counts each event once, however often its sender sent it.

The report reads the stored events as they are (no FINAL: ingest leaves duplicates out before it
stores a batch), so this is what keeps it exact. The shared collector runs workflows.example.yaml;
each test's system is its own, so no other test's events count.
"""

from __future__ import annotations

import uuid

import httpx

from tests.support.ingest import business_event, post_events, unique_key


def test_an_event_sent_again_or_under_another_key_of_its_transaction_counts_once(http: httpx.Client) -> None:
    system, key, alias = unique_key("erp"), unique_key("OPP"), unique_key("SO")
    won = business_event(key, system=system, event_id=str(uuid.uuid4()), aliases={"sales_order": alias})
    ordered = business_event(
        alias, system=system, step="erp.order.created", event_id=str(uuid.uuid4()), status="error"
    )
    assert post_events(http, won, ordered).status_code == 200
    assert post_events(http, won, ordered).json()["duplicates"] == 2  # a sender's retry
    again = {**ordered, "correlation_id": key}  # the same event, under the transaction's other key
    assert post_events(http, again).json()["duplicates"] == 1

    systems = {system["system"]: system for system in http.get("/api/systems").json()["systems"]}
    assert (systems[system]["events"], systems[system]["errors"]) == (2, 1)
    assert sum(point["events"] for point in systems[system]["series"]) == 2
