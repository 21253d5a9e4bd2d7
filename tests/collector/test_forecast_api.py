"""Forecasts through the real HTTP API of a real collector: in a transaction's detail, the queue
sorted and filtered by predicted breach, and the ``predicted_breach`` rule firing before the SLA is
breached. Event times are relative to the collector's clock (now), as a live integration's are.

Every order goes order.received -> order.approved (about an hour later) -> order.shipped (about
75 minutes after approval, which completes it); the SLA is 2h. A claim is filed then paid, stuck when
unpaid for 30 minutes; none of the claims stuck in the history was ever paid.
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

WORKFLOWS = """
workflows:
  orders:
    sla: 2h
    stuck_after: 1d
    complete_on: [order.shipped]
    steps:
      - {name: order.received, system: shop}
      - {name: order.approved, system: erp}
      - {name: order.shipped, system: wms}
  claims:
    sla: 4h
    stuck_after: 30m
    complete_on: [claim.paid]
    steps:
      - {name: claim.filed, system: portal}
      - {name: claim.paid, system: erp}
alerts:
  receivers:
    ops: {type: webhook, url_env: FORECAST_TEST_HOOK_URL}
  rules:
    - {name: will-breach, when: predicted_breach, lead: 30m, severity: warning, receivers: [ops]}
"""
NOW = dt.datetime.now(dt.UTC)


def ago(minutes: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes)).isoformat()


def order(key: str, *steps: tuple[str, float]) -> list[dict[str, Any]]:
    return [
        {"correlation_id": key, "workflow": "orders", "step": step, "system": "x", "timestamp": ago(minutes)}
        for step, minutes in steps
    ]


def claim(key: str, *steps: tuple[str, float]) -> list[dict[str, Any]]:
    return [
        {"correlation_id": key, "workflow": "claims", "step": step, "system": "x", "timestamp": ago(minutes)}
        for step, minutes in steps
    ]


def history() -> list[dict[str, Any]]:
    """25 orders completed hours ago; SOON, whose SLA ends in 20 minutes, and FRESH, in 110. 25 claims
    paid 10 minutes after filing, 12 stuck two days ago and never paid, and STALLED, stuck for 20
    minutes (its SLA ends in 3h10)."""
    events = []
    for number in range(25):  # completed between 12 and 6 hours ago
        received = 12 * 60 - 10 * number
        approved = received - (55 + number % 11)
        events += order(
            f"DONE-{number:03d}",
            ("order.received", received),
            ("order.approved", approved),
            ("order.shipped", approved - (70 + number % 11)),
        )
    events += order("SOON", ("order.received", 100), ("order.approved", 40))  # SLA ends in 20 min
    events += order("FRESH", ("order.received", 10))  # SLA ends in 110 min
    for number in range(25):
        events += claim(
            f"PAID-{number:02d}",
            ("claim.filed", 12 * 60 - 10 * number),
            ("claim.paid", 12 * 60 - 10 * number - 10),
        )
    for number in range(12):
        events += claim(f"LOST-{number:02d}", ("claim.filed", 2 * 24 * 60))
    events += claim("STALLED", ("claim.filed", 50))
    return events


def forecasting_collector(folder: Path) -> CollectorProcess:
    """A collector with the orders workflow and its rule, holding ``history()`` as of now."""
    global NOW  # the history is relative to when it is sent, not to when the module was collected
    NOW = dt.datetime.now(dt.UTC)
    (folder / "workflows.yaml").write_text(WORKFLOWS)
    collector = CollectorProcess(
        store_dir=folder / "store",
        workflows=folder / "workflows.yaml",
        env={"THREADLINE_ALERT_INTERVAL": "0.5"},
        isolated=True,
    ).start()
    response = httpx.post(f"{collector.url}/v1/events", json={"events": history()}, timeout=30)
    assert response.status_code == 200, response.text
    return collector


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    collector = forecasting_collector(tmp_path_factory.mktemp("forecast"))
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client
    collector.stop()


def test_a_transaction_carries_its_forecast(api: httpx.Client) -> None:
    body = api.get("/api/transactions/SOON").json()

    forecast = body["forecast"]
    assert forecast["breach_expected"] is True
    assert 18 * 60 < forecast["lead_seconds"] <= 20 * 60
    eta = dt.datetime.fromisoformat(forecast["eta"])
    assert NOW + dt.timedelta(minutes=30) < eta < NOW + dt.timedelta(minutes=40)  # approved 40 min ago + 74
    assert "order.shipped usually takes 1h14 (p50), 1h18 (p80) here" in forecast["reason"]
    assert "SLA ends in" in forecast["reason"]
    assert body["sla"]["breached"] is False


def test_a_stuck_transaction_whose_like_never_completed_is_not_expected_to_complete(
    api: httpx.Client,
) -> None:
    forecast = api.get("/api/transactions/STALLED").json()["forecast"]

    assert forecast["eta"] is None and forecast["completion_expected"] is False
    assert forecast["breach_expected"] is True
    assert 185 * 60 < forecast["lead_seconds"] <= 190 * 60
    assert forecast["reason"].startswith(
        "stuck: of the 13 claims transactions stuck recently, 0 completed later"
    )
    assert "not expected to complete without intervention, SLA ends in 3h" in forecast["reason"]


def test_a_completed_transaction_has_no_eta(api: httpx.Client) -> None:
    forecast = api.get("/api/transactions/DONE-000").json()["forecast"]

    assert forecast["eta"] is None and forecast["reason"] == "no forecast: the transaction is completed"


def test_the_queue_sorts_and_filters_by_predicted_breach(api: httpx.Client) -> None:
    def keys(**params: Any) -> list[str]:
        response = api.get(
            "/api/transactions", params={"state": "in_progress,stuck", "workflow": "orders", **params}
        )
        assert response.status_code == 200, response.text
        return [item["correlation_id"] for item in response.json()["items"]]

    assert keys(sort="predicted_breach") == ["SOON", "FRESH"]
    assert keys(predicted_breach="true", sort="predicted_breach") == ["SOON", "FRESH"]
    assert keys() == ["FRESH", "SOON"]  # newest activity first otherwise


def test_an_unknown_order_is_refused_naming_the_field(api: httpx.Client) -> None:
    response = api.get("/api/transactions", params={"sort": "eta"})

    assert response.status_code in (400, 422)
    assert "sort" in response.text


def test_the_predicted_breach_rule_fires_before_the_sla_is_breached(api: httpx.Client) -> None:
    def firing() -> list[dict[str, Any]] | None:
        items = api.get("/api/alerts", params={"rule": "will-breach", "status": "firing"}).json()["items"]
        return items or None

    alerts = eventually(firing, what="the will-breach alert")

    # SOON's deadline is within the 30 minutes' lead; FRESH's (110 minutes away) is not yet.
    assert [alert["subject"] for alert in alerts] == ["SOON"]
    assert api.get("/api/transactions/SOON").json()["sla"]["breached"] is False
