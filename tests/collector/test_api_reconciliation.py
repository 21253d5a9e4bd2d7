"""Reconciliation through the query API, over real HTTP to a real collector process: a transaction
whose systems disagree on the amount shows its mismatch in ``GET /api/transactions/{key}``, is listed
by ``GET /api/transactions?issue=mismatch``, counted by ``GET /api/overview`` and fires the alert rule
``mismatch`` at a real webhook receiver; two onboardings of one tax id are each other's duplicates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.polling import eventually
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

WORKFLOWS = Path(__file__).parents[1] / "fixtures" / "reconciliation-workflows.yaml"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[httpx.Client, WebhookReceiver]]:
    receiver = WebhookReceiver().start()
    env = {
        "THREADLINE_STATE_INTERVAL": "0.2s",
        "THREADLINE_ALERT_INTERVAL": "0.3",
        "THREADLINE_SHARED_READ_SECONDS": "0",
        "TEST_HOOK_URL": receiver.url("/hook"),
    }
    collector = CollectorProcess(store_dir=tmp_path / "store", workflows=WORKFLOWS, env=env, isolated=True)
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=30) as client:
            yield client, receiver
    finally:
        collector.stop()
        receiver.stop()


def event(key: str, step: str, system: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return {
        "correlation_id": key,
        "workflow": fields.pop("workflow", "quote-to-cash"),
        "attributes": {"plan": "pro"},  # the plan agrees: the amount is what these tests are about
        "step": step,
        "system": system,
        "timestamp": moment.isoformat(),
        **fields,
    }


def test_a_mismatch_and_a_duplicate_show_in_the_transaction_the_queue_the_overview_and_alerts(
    http: tuple[httpx.Client, WebhookReceiver],
) -> None:
    client, receiver = http
    # The rules watch from their first evaluation: what happens after it is news.
    eventually(lambda: client.get("/api/alerts/rules").json()["last_evaluation"], what="a first evaluation")
    events = [
        event("OPP-1", "crm.opportunity.won", "salesforce", 30, amount=48000, currency="USD"),
        event("OPP-1", "erp.order.created", "netsuite", 20, amount=48000, currency="USD"),
        event("OPP-1", "billing.subscription.activated", "stripe", 10, amount=46000, currency="USD"),
        event("OPP-2", "crm.opportunity.won", "salesforce", 30, amount=1000, currency="USD"),
        event("OPP-2", "erp.order.created", "netsuite", 20),  # ERP never sent the amount
        *(
            event(
                key,
                "crm.account.created",
                "salesforce",
                60,
                workflow="onboarding",
                attributes={"tax_id": "DE1"},
            )
            for key in ("ONB-1", "ONB-2")
        ),
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 200

    def queue(issue: str) -> list[str]:
        answer = client.get("/api/transactions", params={"issue": issue})
        assert answer.status_code == 200, answer.text
        return sorted(item["correlation_id"] for item in answer.json()["items"])

    assert eventually(lambda: queue("mismatch") == ["OPP-1", "OPP-2"], what="the mismatches derived")
    [mismatch] = client.get("/api/transactions/OPP-1").json()["mismatches"]
    assert (mismatch["field"], mismatch["kind"], mismatch["tolerance"]) == ("amount", "differs", "0.5%")
    assert [(s["step"], s["system"], s["value"], s["currency"]) for s in mismatch["steps"]] == [
        ("crm.opportunity.won", "salesforce", 48000, "USD"),
        ("erp.order.created", "netsuite", 48000, "USD"),
        ("billing.subscription.activated", "stripe", 46000, "USD"),
    ]
    [missing] = client.get("/api/transactions/OPP-2").json()["mismatches"]
    assert (missing["kind"], missing["steps"][0]["step"], missing["steps"][0]["value"]) == (
        "missing",
        "erp.order.created",
        None,
    )

    assert queue("duplicate") == ["ONB-1", "ONB-2"]
    duplicates = client.get("/api/transactions/ONB-1").json()["duplicates"]
    assert [(d["correlation_id"], d["field"]) for d in duplicates] == [("ONB-2", "attributes.tax_id")]
    assert client.get("/api/transactions/ONB-2").json()["duplicates"][0]["correlation_id"] == "ONB-1"

    totals = client.get("/api/overview").json()["totals"]
    assert (totals["with_mismatches"], totals["mismatched_values"], totals["with_duplicates"]) == (
        2,
        {"amount": 2},
        2,
    )

    fired = eventually(lambda: receiver.received("OPP-1", status="firing"), what="the mismatch alert")
    assert fired[0].alert["alert"]["rule"] == "amounts-disagree"
    assert "amount differs beyond 0.5%" in fired[0].alert["summary"]
    assert eventually(lambda: receiver.received("ONB-1", status="firing"), what="the duplicate alert")

    refused = client.get("/api/transactions", params={"issue": "typo"})
    assert refused.status_code == 400 and refused.json()["problems"][0]["field"] == "issue"
