"""Silences through the API, over real HTTP: a real collector, API keys, a real webhook receiver.

An operator (a key with the ``act`` role) silences a rule: its alerts still fire and show, marked
silenced, but nothing is sent; expiring the silence lets the next ones through. Setting and
expiring are audited; reading is not enough to do either; bad requests say which field is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.test_alerts import WORKFLOWS, evaluations, event
from tests.support.collector_process import CollectorProcess
from tests.support.polling import eventually
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

OPERATOR_KEY, READER_KEY = "tl_silence_operator", "tl_silence_reader"
KEYS = f"""
keys:
  - {{name: on-call, key: {OPERATOR_KEY}, tenant: acme, roles: [ingest, read, act]}}
  - {{name: wallboard, key: {READER_KEY}, tenant: acme, roles: [read]}}
"""
RULES = """\
    - {name: order-sla, workflow: order, when: sla_breached, severity: critical, receivers: [hook]}
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


@pytest.fixture
def collector(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[CollectorProcess]:
    (tmp_path / "keys.yaml").write_text(KEYS)
    (tmp_path / "workflows.yaml").write_text(WORKFLOWS + RULES)
    running = CollectorProcess(
        store_dir=tmp_path / "store",
        workflows=tmp_path / "workflows.yaml",
        env={
            "THREADLINE_API_KEYS": str(tmp_path / "keys.yaml"),
            "THREADLINE_ALERT_INTERVAL": "0.5",
            "TEST_HOOK_URL": receiver.url("/hook"),
            "TEST_CHAT_URL": receiver.url("/chat"),
        },
        isolated=True,
    ).start()
    yield running
    running.stop()


def client(collector: CollectorProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=collector.url, timeout=30, headers={"Authorization": f"Bearer {key}"})


def later(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


def silence(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/api/alerts/silences", json={"comment": "planned ERP upgrade", **body})


def problems(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    assert "Traceback" not in response.text
    return {problem["field"]: problem["reason"] for problem in response.json()["problems"]}


def test_a_silenced_rule_fires_and_shows_but_sends_nothing_until_the_silence_is_expired(
    collector: CollectorProcess, receiver: WebhookReceiver
) -> None:
    http, reader = client(collector, OPERATOR_KEY), client(collector, READER_KEY)

    assert silence(reader, matchers={"rule": "order-sla"}, ends_at=later(hours=1)).status_code == 403
    assert "ends_at" in problems(silence(http, matchers={"rule": "order-sla"}, ends_at=later(hours=-1)))
    assert "matchers.colour.[key]" in problems(
        silence(http, matchers={"colour": "red"}, ends_at=later(hours=1))
    )
    assert "matchers" in problems(silence(http, matchers={}, ends_at=later(hours=1)))
    assert "ends_at" in problems(
        silence(http, matchers={"rule": "order-sla"}, ends_at="9999-01-01T00:00:00Z")
    )
    assert "ends_at" in problems(silence(http, matchers={"rule": "order-sla"}, ends_at="2030-01-01T00:00:00"))
    assert "comment" in problems(
        http.post("/api/alerts/silences", json={"matchers": {"rule": "x"}, "ends_at": later(hours=1)})
    )
    assert http.get("/api/alerts/silences").json()["items"] == [], "a refused silence was stored"

    created = silence(http, matchers={"rule": "order-sla"}, ends_at=later(hours=1), operator="Dana Ops")
    assert created.status_code == 201, created.text
    muted = created.json()
    assert muted["state"] == "active" and muted["created_by"] == "on-call" and muted["operator"] == "Dana Ops"
    # A maintenance window: a system, starting later.
    window = silence(http, matchers={"system": "erp"}, starts_at=later(hours=2), ends_at=later(hours=4))
    assert window.status_code == 201 and window.json()["state"] == "pending"
    assert [s["id"] for s in reader.get("/api/alerts/silences").json()["items"]] == [
        window.json()["id"],
        muted["id"],
    ]

    response = http.post("/v1/events", json={"events": [event("ORD-1", "order.received", "crm", 90)]})
    assert response.status_code == 200, response.text
    [alert] = eventually(lambda: http.get("/api/alerts").json()["items"], what="the alert")
    evaluations(http, 3)
    assert receiver.requests == [], "a silenced alert was sent"
    [alert] = http.get("/api/alerts").json()["items"]
    assert alert["status"] == "firing" and alert["silenced_by"] == [muted["id"]]
    assert alert["labels"]["rule"] == "order-sla" and alert["labels"]["system"] == "erp"
    assert [n["status"] for n in alert["notifications"]] == ["silenced"]

    assert http.post(f"/api/alerts/silences/{muted['id']}/expire", json={}).status_code == 400
    assert reader.post(f"/api/alerts/silences/{muted['id']}/expire", json={"comment": "x"}).status_code == 403
    expired = http.post(f"/api/alerts/silences/{muted['id']}/expire", json={"comment": "upgrade done"})
    assert expired.status_code == 200, expired.text
    assert expired.json()["state"] == "expired" and expired.json()["expired_by"] == "on-call"
    again = http.post(f"/api/alerts/silences/{muted['id']}/expire", json={"comment": "twice"})
    assert again.status_code == 409
    assert http.post("/api/alerts/silences/nope/expire", json={"comment": "x"}).status_code == 404
    assert http.get("/api/alerts").json()["items"][0]["silenced_by"] == []

    response = http.post("/v1/events", json={"events": [event("ORD-2", "order.received", "crm", 90)]})
    assert response.status_code == 200, response.text
    eventually(lambda: receiver.received("ORD-2", status="firing"), what="the next alert, told")
    assert receiver.received("ORD-1") == [], "the silenced alert was told after all"

    audit = reader.get("/api/audit").json()["items"]
    assert [(entry["action"], entry["actor"]) for entry in audit] == [
        ("expire", "on-call"),
        ("silence", "on-call"),
        ("silence", "on-call"),
    ]
    assert "upgrade done" in audit[0]["comment"] and muted["id"] in audit[0]["comment"]
    assert audit[1]["system"] == "erp"
