"""Schema drift through the API, over real HTTP to a real collector process: a system that stops
sending an attribute (and starts sending another) is listed by ``GET /api/systems/drift`` from the
exact event it began, and fires a ``schema_drift`` alert rule, which resolves once the attribute
comes back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess, running_collector
from tests.support.ingest import stripe_activation
from tests.support.polling import eventually
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.slow

STEP = "billing.subscription.activated"
WORKFLOWS = f"""
workflows:
  quote-to-cash:
    steps:
      - {{name: {STEP}, system: stripe}}
alerts:
  receivers:
    hook: {{type: webhook, url_env: TEST_HOOK_URL, group_by: [...], group_wait: 0.1s, group_interval: 0.1s}}
  rules:
    - {{name: stripe-schema, when: schema_drift, system: stripe, severity: warning, receivers: hook}}
    - {{name: netsuite-schema, when: schema_drift, system: netsuite, severity: warning, receivers: hook}}
"""
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CHANGE = NOW - dt.timedelta(minutes=50)


def renamed(plan_id: str | None = "price_ent") -> list[dict[str, Any]]:
    """300 activations with a plan every 15 minutes, then 25 a minute apart without it from CHANGE
    (with a plan id instead, unless None)."""
    before = [
        stripe_activation(n, CHANGE - dt.timedelta(minutes=15) * (300 - n), plan="Enterprise annual")
        for n in range(300)
    ]
    new = {"plan_id": plan_id} if plan_id else {}
    return before + [
        stripe_activation(300 + n, CHANGE + dt.timedelta(minutes=1) * n, **new) for n in range(25)
    ]


def post(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 250):
        answer = client.post("/v1/events", json={"events": events[start : start + 250]})
        assert answer.status_code == 200, answer.text


def test_a_renamed_attribute_is_two_drifts_and_an_alert_until_it_comes_back(tmp_path: Path) -> None:
    receiver = WebhookReceiver().start()
    workflows = tmp_path / "workflows.yaml"
    workflows.write_text(WORKFLOWS)
    env = {
        "THREADLINE_ALERT_INTERVAL": "0.3",
        "THREADLINE_ALERT_DRIFT_INTERVAL": "0",  # every evaluation looks (300 s by default)
        "THREADLINE_SHARED_READ_SECONDS": "0",
        "TEST_HOOK_URL": receiver.url("/hook"),
    }
    try:
        with (
            running_collector(tmp_path, workflows, env) as collector,
            httpx.Client(base_url=collector.url, timeout=30) as client,
        ):
            post(client, renamed())

            report = client.get("/api/systems/drift").json()
            drifts = {(d["attribute"], d["kind"]): d for d in report["drifts"]}
            assert set(drifts) == {("plan", "missing"), ("plan_id", "new")}
            missing = drifts["plan", "missing"]
            assert dt.datetime.fromisoformat(missing["since"]) == CHANGE
            assert (missing["events_since"], missing["events_before"], missing["carrying_before"]) == (
                25,
                300,
                300,
            )
            assert missing["example"] == {
                "time": missing["since"],
                "event_id": "ev-300",
                "correlation_id": "SO-300",
            }
            assert (report["baseline_days"], report["min_before"], report["min_since"]) == (7.0, 200, 20)

            subject = f"stripe / {STEP} / plan (missing)"
            fired = eventually(lambda: receiver.firing("stripe-schema", subject), what="the drift's alert")
            assert fired[0]["alert"]["labels"]["system"] == "stripe"
            assert "`plan` missing since" in fired[0]["summary"]
            assert fired[0]["figures"]["example"]["event_id"] == "ev-300"
            assert [item["correlation_id"] for item in fired[0]["transactions"]] == ["SO-300"]
            assert receiver.firing("stripe-schema", f"stripe / {STEP} / plan_id (new)")
            assert not [r for r in receiver.requests if "netsuite-schema" in str(r.body)]

            # Stripe sends the plan again: it has not stopped sending it, and the alert resolves.
            post(client, [stripe_activation(400, NOW - dt.timedelta(minutes=1), plan="Enterprise annual")])
            kinds = {(d["attribute"], d["kind"]) for d in client.get("/api/systems/drift").json()["drifts"]}
            assert kinds == {("plan_id", "new")}

            def resolved() -> bool:
                return any(
                    alert["status"] == "resolved" and alert["alert"]["subject"] == subject
                    for request in receiver.requests
                    for alert in request.body.get("alerts", [])
                )

            assert eventually(resolved, what="the resolved notification")
    finally:
        receiver.stop()


def test_the_answer_as_of_a_moment_before_the_change_has_no_drift(tmp_path: Path) -> None:
    collector = CollectorProcess(
        store_dir=tmp_path / "store", env={"THREADLINE_SHARED_READ_SECONDS": "0"}, isolated=True
    )
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=30) as client:
            post(client, renamed(plan_id=None))
            earlier = (CHANGE - dt.timedelta(hours=2)).isoformat()
            assert client.get("/api/systems/drift", params={"as_of": earlier}).json()["drifts"] == []
            assert [d["attribute"] for d in client.get("/api/systems/drift").json()["drifts"]] == ["plan"]
            assert client.get("/api/systems/drift", params={"as_of": "yesterday"}).status_code == 400
    finally:
        collector.stop()
