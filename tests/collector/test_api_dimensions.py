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
