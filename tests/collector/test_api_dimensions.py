"""Business dimensions through the query API, over real HTTP to a real collector process: a
workflow's ``dimensions:`` filter the queue (``dimension=region:EMEA``), the overview and the
process map, group the overview (``group_by=region``) and show in each transaction; a malformed or
undeclared dimension is a 400 naming the parameter."""

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

WORKFLOWS = """
workflows:
  quote-to-cash:
    dimensions: [region, segment]
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.order.created, system: netsuite, after: [crm.opportunity.won]}
      - {name: billing.subscription.activated, system: stripe, after: [erp.order.created]}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    workflows = tmp_path / "workflows.yaml"
    workflows.write_text(WORKFLOWS)
    env = {"THREADLINE_STATE_INTERVAL": "0.2s", "THREADLINE_SHARED_READ_SECONDS": "0"}
    collector = CollectorProcess(store_dir=tmp_path / "store", workflows=workflows, env=env, isolated=True)
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=30) as http:
            yield http
    finally:
        collector.stop()


def event(key: str, step: str, minutes_ago: float, **attributes: str) -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": "quote-to-cash",
        "step": step,
        "system": "salesforce",
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat(),
        "attributes": attributes,
    }


def test_the_queue_overview_and_map_filter_and_group_by_dimensions(client: httpx.Client) -> None:
    events = [
        event("OPP-1", "crm.opportunity.won", 30, region="EMEA", segment="enterprise"),
        event("OPP-1", "erp.order.created", 20),
        event("OPP-2", "crm.opportunity.won", 30, region="EMEA", segment="smb"),
        event("OPP-3", "crm.opportunity.won", 30, region="AMER", segment="smb"),
        event("OPP-3", "billing.subscription.activated", 10),  # out of order: another variant
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 200

    def queue(*wanted: str) -> list[str]:
        answer = client.get("/api/transactions", params={"dimension": list(wanted)})
        assert answer.status_code == 200, answer.text
        return sorted(item["correlation_id"] for item in answer.json()["items"])

    assert eventually(lambda: queue("region:EMEA") == ["OPP-1", "OPP-2"], what="the dimensions kept")
    assert queue("region:EMEA", "segment:smb") == ["OPP-2"]
    assert client.get("/api/transactions/OPP-3").json()["dimensions"] == {"region": "AMER", "segment": "smb"}

    overview = client.get("/api/overview", params={"group_by": "segment"}).json()
    assert [(group["value"], group["transactions"]) for group in overview["groups"]] == [
        ("smb", 2),
        ("enterprise", 1),
    ]
    # The same answer has the figures per workflow and in total, as an ungrouped overview has.
    assert overview["totals"]["transactions"] == 3
    assert [(figures["workflow"], figures["transactions"]) for figures in overview["workflows"]] == [
        ("quote-to-cash", 3)
    ]
    emea = client.get("/api/overview", params={"dimension": "region:EMEA"}).json()["totals"]
    assert emea["transactions"] == 2

    process = client.get("/api/workflows/quote-to-cash/map", params={"dimension": "region:AMER"}).json()
    assert process["transactions"] == 1
    assert [variant["steps"] for variant in process["variants"]] == [
        ["crm.opportunity.won", "billing.subscription.activated"]
    ]
    [workflow] = client.get("/api/workflows").json()
    assert workflow["dimensions"] == ["region", "segment"]
    assert client.get("/api/dimensions").json() == [
        {
            "dimension": "region",
            "values": [{"value": "EMEA", "transactions": 2}, {"value": "AMER", "transactions": 1}],
        },
        {
            "dimension": "segment",
            "values": [{"value": "smb", "transactions": 2}, {"value": "enterprise", "transactions": 1}],
        },
    ]


@pytest.mark.parametrize(
    ("path", "parameter", "value", "reason"),
    [
        ("/api/transactions", "dimension", "region", "is not `<dimension>:<value>`"),
        ("/api/transactions", "dimension", "country:DE", "'country' is not a dimension of any workflow"),
        ("/api/overview", "group_by", "country", "(declared: region, segment)"),
        ("/api/workflows/quote-to-cash/map", "dimension", "region:", "is not `<dimension>:<value>`"),
    ],
)
def test_a_malformed_or_undeclared_dimension_is_a_400_naming_it(
    client: httpx.Client, path: str, parameter: str, value: str, reason: str
) -> None:
    answer = client.get(path, params={parameter: value})
    assert answer.status_code == 400
    [problem] = answer.json()["problems"]
    assert problem["field"] == parameter and reason in problem["reason"]


ALERTING = """
workflows:
  quote-to-cash:
    dimensions: [region]
    fail_on: [erp.order.rejected]
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.order.rejected, system: netsuite}
alerts:
  receivers:
    hook: {type: webhook, url_env: TEST_HOOK_URL, group_by: [...], group_wait: 0.1s, group_interval: 0.1s}
  rules:
    - {name: emea-failed, when: failed, severity: critical, receivers: hook, dimensions: {region: EMEA}}
"""


def test_an_alert_rule_with_a_dimension_fires_for_that_slice_only(tmp_path: Path) -> None:
    receiver = WebhookReceiver().start()
    workflows = tmp_path / "workflows.yaml"
    workflows.write_text(ALERTING)
    env = {
        "THREADLINE_STATE_INTERVAL": "0.2s",
        "THREADLINE_ALERT_INTERVAL": "0.3",
        "THREADLINE_SHARED_READ_SECONDS": "0",
        "TEST_HOOK_URL": receiver.url("/hook"),
    }
    collector = CollectorProcess(store_dir=tmp_path / "store", workflows=workflows, env=env, isolated=True)
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=30) as client:
            # The rules watch from their first evaluation: what happens after it is news.
            eventually(lambda: client.get("/api/alerts/rules").json()["last_evaluation"], what="a first pass")
            events = [
                event(key, step, minutes, region=region)
                for key, region in (("OPP-EMEA", "EMEA"), ("OPP-AMER", "AMER"))
                for step, minutes in (("crm.opportunity.won", 20), ("erp.order.rejected", 10))
            ]
            assert client.post("/v1/events", json={"events": events}).status_code == 200
            fired = eventually(lambda: receiver.received("OPP-EMEA", status="firing"), what="the EMEA alert")
            assert fired[0].alert["alert"]["rule"] == "emea-failed"
            # OPP-AMER failed as well and is in the same store: the rule's next passes never tell of it.
            rules = "/api/alerts/rules"
            told = client.get(rules).json()["last_evaluation"]
            eventually(lambda: client.get(rules).json()["last_evaluation"] != told, what="a later pass")
            assert not receiver.received("OPP-AMER")
            rule = client.get("/api/alerts/rules").json()["rules"][0]
            assert rule["dimensions"] == {"region": "EMEA"}
    finally:
        collector.stop()
        receiver.stop()
