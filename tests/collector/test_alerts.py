"""Alerting end to end: a real collector process, a real webhook receiver, events timed to breach now.

The receiver is a real HTTP server in a thread that records every request and can be told to
answer 500 or to stop listening (the receiver is down). Every collector here runs its own store
with a short evaluation interval; the tests wait for evaluations to happen (``/api/alerts/rules``
says when the last one ran) instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import MetricsSnapshot
from tests.support.polling import eventually
from tests.support.webhook_receiver import Request, WebhookReceiver

pytestmark = pytest.mark.slow

T = TypeVar("T")
DASHBOARD = "http://dashboard.example:8050"
WORKFLOWS = """\
workflows:
  order:
    sla: 1h
    stuck_after: 30m
    steps:
      - {name: order.received, system: crm}
      - {name: order.booked, system: erp}
      - {name: order.billed, system: billing}
  refund:
    sla: 2h
    stuck_after: 1h
    fail_on: [refund.refused]
    steps:
      - {name: refund.requested, system: support}
      - {name: refund.paid, system: billing}
      - {name: refund.refused, system: billing, after: [refund.requested]}
alerts:
  receivers:
    # Each alert a group of its own, told at once: one notification per alert event.
    hook: {type: webhook, url_env: TEST_HOOK_URL, group_by: [...], group_wait: 0.1s, group_interval: 0.1s}
    chat: {type: slack, url_env: TEST_CHAT_URL, group_by: [...], group_wait: 0.1s, group_interval: 0.1s}
  rules:
"""
SLA_RULE = """\
    - name: order-sla
      workflow: order
      when: sla_breached
      severity: critical
      receivers: [hook, chat]
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


def evaluations(http: httpx.Client, count: int = 2) -> None:
    """Wait until ``count`` evaluations have started and finished after now."""
    for _ in range(count):
        moment = dt.datetime.now(dt.UTC)

        def evaluated(moment: dt.datetime = moment) -> bool:
            last = http.get("/api/alerts/rules").json()["last_evaluation"]
            return last is not None and dt.datetime.fromisoformat(last) > moment

        eventually(evaluated, what="an evaluation")


def ago(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


def event(key: str, step: str, system: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
    workflow = fields.pop("workflow", "order")
    return {
        "correlation_id": key,
        "workflow": workflow,
        "step": step,
        "system": system,
        "timestamp": ago(minutes_ago),
        **fields,
    }


@dataclass
class Setup:
    """Collectors on one store (restartable), the definitions file, the receiver they post to."""

    folder: Path
    receiver: WebhookReceiver
    rules: str
    env: dict[str, str] = field(default_factory=dict)
    running: CollectorProcess | None = None

    @property
    def workflows(self) -> Path:
        return self.folder / "workflows.yaml"

    def start(self) -> httpx.Client:
        self.workflows.write_text(WORKFLOWS + self.rules)
        env = {
            "THREADLINE_ALERT_INTERVAL": "0.5",
            "THREADLINE_ALERT_RETRY_SECONDS": "0.2",
            "THREADLINE_ALERT_RETRY_MAX_SECONDS": "0.5",
            "THREADLINE_DASHBOARD_URL": DASHBOARD,
            "TEST_HOOK_URL": self.receiver.url("/hook"),
            "TEST_CHAT_URL": self.receiver.url("/chat"),
            **self.env,
        }
        self.running = CollectorProcess(
            store_dir=self.folder / "store", workflows=self.workflows, env=env, isolated=True
        ).start()
        return httpx.Client(base_url=self.running.url, timeout=30)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture
def setup(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[Callable[[str], Setup]]:
    made: list[Setup] = []

    def make(rules: str) -> Setup:
        made.append(Setup(tmp_path, receiver, rules))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def send(http: httpx.Client, *events: dict[str, Any]) -> None:
    response = http.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.text


def alerts(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = http.get("/api/alerts", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_an_alert_fires_once_not_again_after_a_restart_and_resolves_when_the_transaction_completes(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    run = setup(SLA_RULE)
    http = run.start()
    send(
        http,
        event(
            "ORD-1", "order.received", "crm", 90, amount=48000, currency="USD", aliases={"erp.order": "SO-1"}
        ),
        event("ORD-OK", "order.received", "crm", 5),  # within its SLA: no alert
    )

    [fired] = eventually(lambda: receiver.received("ORD-1", status="firing"), what="the firing webhook")
    assert fired.body["schema"] == "threadline.alert-group/v1" and fired.body["status"] == "firing"
    assert fired.headers["idempotency-key"] == fired.body["notification_id"]
    body = fired.alert
    assert body["alert"]["rule"] == "order-sla" and body["alert"]["severity"] == "critical"
    assert body["alert"]["condition"] == "sla_breached" and body["alert"]["subject"] == "ORD-1"
    assert re.fullmatch(
        r"order ORD-1 breached its 1h SLA by 3\dm, waiting on order\.booked \(erp\)", body["summary"]
    )
    [transaction] = body["transactions"]
    assert transaction["keys"] == {"erp.order": "SO-1"}
    assert transaction["state"] == "stuck" and (transaction["amount"], transaction["currency"]) == (
        48000,
        "USD",
    )
    assert [(w["step"], w["system"]) for w in transaction["waiting_on"]] == [("order.booked", "erp")]
    assert transaction["link"] == f"{DASHBOARD}/transactions/ORD-1"
    [slack] = eventually(lambda: receiver.received("ORD-1", path="/chat"), what="the Slack message")
    assert set(slack.body) == {"text", "blocks"} and "FIRING [critical] order-sla" in slack.body["text"]
    assert f"<{DASHBOARD}/transactions/ORD-1|ORD-1>" in slack.body["blocks"][1]["text"]["text"]

    evaluations(http, 3)
    assert len(receiver.received("ORD-1")) == 1 and len(receiver.received("ORD-1", path="/chat")) == 1
    assert receiver.received("ORD-OK") == []
    run.stop()
    http = run.start()  # the same store
    evaluations(http, 3)
    assert len(receiver.received("ORD-1")) == 1, "fired again after a restart"
    assert len(receiver.received("ORD-1", path="/chat")) == 1

    send(http, event("ORD-1", "order.booked", "erp", 1), event("ORD-1", "order.billed", "billing", 0))

    [resolved] = eventually(
        lambda: receiver.received("ORD-1", status="resolved"), what="the resolved webhook"
    )
    assert resolved.alert["alert"]["resolution"] == "the transaction completed"
    assert resolved.alert["alert"]["id"] == body["alert"]["id"]
    assert resolved.alert["transactions"][0]["state"] == "completed"
    eventually(lambda: len(receiver.received("ORD-1", path="/chat")) == 2, what="the resolved Slack message")
    [alert] = alerts(http, transaction="SO-1")  # by any key of the transaction
    assert alert["status"] == "resolved" and alert["resolution"] == "the transaction completed"
    assert alert["link"] == f"{DASHBOARD}/transactions/ORD-1"
    assert sorted((n["receiver"], n["event"], n["status"]) for n in alert["notifications"]) == [
        ("chat", "firing", "delivered"),
        ("chat", "resolved", "delivered"),
        ("hook", "firing", "delivered"),
        ("hook", "resolved", "delivered"),
    ]
    evaluations(http, 2)
    assert len(receiver.received("ORD-1")) == 2  # one firing, one resolved, nothing more


def test_a_notification_is_retried_while_the_receiver_is_down_and_delivered_once_even_across_a_restart(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    run = setup(SLA_RULE.replace("[hook, chat]", "[hook]"))
    receiver.status = 500
    http = run.start()
    send(http, event("ORD-2", "order.received", "crm", 90))

    eventually(lambda: len(receiver.received("ORD-2", ok=False)) >= 2, what="two refused attempts")
    receiver.stop()  # now nobody listens at all

    def attempts_while_down() -> int:
        found = alerts(http, transaction="ORD-2")
        if not found:
            return 0
        notification = found[0]["notifications"][0]
        ok = notification["status"] == "pending" and "Connect" in notification["last_error"]
        return notification["attempts"] if ok else 0

    eventually(attempts_while_down, what="an attempt with nobody listening")
    run.stop()  # with the notification still pending
    receiver.status = 200
    receiver.start()
    http = run.start()

    eventually(lambda: receiver.received("ORD-2"), what="the delivery after the restart")
    evaluations(http, 3)
    assert len(receiver.received("ORD-2")) == 1, "delivered more than once"
    [alert] = alerts(http, transaction="ORD-2")
    detail = http.get(f"/api/alerts/{alert['id']}").json()
    [notification] = detail["notifications"]
    assert notification["status"] == "delivered" and notification["last_error"] == ""
    history = notification["history"]
    assert [attempt["attempt"] for attempt in history] == list(range(1, len(history) + 1))
    assert notification["attempts"] == len(history) >= 4
    assert [attempt["ok"] for attempt in history] == [False] * (len(history) - 1) + [True]
    assert history[0]["status_code"] == 500 and history[0]["error"].startswith("HTTP 500")
    assert any(attempt["status_code"] is None for attempt in history)  # refused while down
    assert history[-1]["status_code"] == 200
    assert detail["context"]["transactions"][0]["correlation_id"] == "ORD-2"


def test_aggregate_rules_fire_once_per_subject_and_resolve_when_the_figure_drops(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    run = setup(
        "    - {name: many-stuck, when: stuck_or_failed_count_above, threshold: 1, window: 1h,"
        " severity: warning, receivers: [hook]}\n"
        "    - {name: erp-errors, when: system_error_rate_above, percent: 20, window: 15m, min_events: 2,"
        " severity: warning, receivers: [hook]}\n"
        "    - {name: at-risk, when: value_at_risk_above, amount: 1000, severity: critical,"
        " receivers: [hook]}\n"
    )
    http = run.start()
    send(
        http,
        event("AGG-1", "order.received", "crm", 50, amount=800, currency="USD"),
        event("AGG-2", "order.received", "crm", 50, amount=800, currency="USD"),
        event("AGG-3", "order.received", "crm", 3),
        event(
            "AGG-3", "order.booked", "erp", 2, status="error", error={"kind": "transient", "message": "502"}
        ),
        event("AGG-3", "order.booked", "erp", 1),
    )

    def fired(rule: str) -> list[Request]:
        return [
            r for r in receiver.requests if r.alert["alert"]["rule"] == rule and r.body["status"] == "firing"
        ]

    eventually(lambda: fired("many-stuck") and fired("erp-errors") and fired("at-risk"), what="three alerts")
    [count] = fired("many-stuck")
    assert count.alert["alert"]["subject"] == "" and count.alert["figures"]["count"] == 2
    assert {t["correlation_id"] for t in count.alert["transactions"]} == {"AGG-1", "AGG-2"}
    [errors] = fired("erp-errors")
    assert errors.alert["alert"]["subject"] == "erp" and errors.alert["figures"]["error_rate_percent"] == 50
    assert [t["correlation_id"] for t in errors.alert["transactions"]] == ["AGG-3"]
    [risk] = fired("at-risk")
    assert risk.alert["alert"]["subject"] == "USD" and risk.alert["figures"]["value_at_risk"] == 1600

    resolved = http.post("/api/transactions/AGG-2/resolve", json={"comment": "booked by hand in the ERP"})
    assert resolved.status_code == 201, resolved.text

    def resolutions() -> dict[str, str]:
        return {
            r.alert["alert"]["rule"]: r.alert["alert"]["resolution"]
            for r in receiver.requests
            if r.body["status"] == "resolved"
        }

    assert eventually(lambda: len(resolutions()) == 2 and resolutions()) == {
        "many-stuck": "back within the limit",
        "at-risk": "back within the limit",
    }
    evaluations(http, 2)
    assert sorted(r.alert["alert"]["rule"] for r in receiver.requests) == [
        "at-risk",
        "at-risk",
        "erp-errors",
        "many-stuck",
        "many-stuck",
    ]
    page = http.get("/api/alerts").json()
    assert (page["firing"], page["resolved"]) == (1, 2)
    assert [a["rule"] for a in alerts(http, status="firing")] == ["erp-errors"]


def test_an_operator_resolving_a_transaction_resolves_its_alert_and_reopening_fires_a_new_one(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    run = setup(SLA_RULE.replace("[hook, chat]", "[hook]"))
    http = run.start()
    send(http, event("ORD-3", "order.received", "crm", 90))
    eventually(lambda: receiver.received("ORD-3", status="firing"))

    assert (
        http.post(
            "/api/transactions/ORD-3/resolve", json={"comment": "cancelled by the customer"}
        ).status_code
        == 201
    )

    [resolved] = eventually(lambda: receiver.received("ORD-3", status="resolved"))
    assert resolved.alert["alert"]["resolution"] == "resolved by an operator"
    assert resolved.alert["transactions"][0]["resolved_by_operator"] is True

    assert (
        http.post("/api/transactions/ORD-3/reopen", json={"comment": "the customer came back"}).status_code
        == 201
    )

    eventually(lambda: len(receiver.received("ORD-3", status="firing")) == 2, what="a second alert")
    first, second = receiver.received("ORD-3", status="firing")
    assert first.alert["alert"]["id"] != second.alert["alert"]["id"]
    assert [a["status"] for a in alerts(http, transaction="ORD-3")] == ["firing", "resolved"]


def test_metrics_gauges_match_the_overview_and_follow_resolutions(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    run = setup(SLA_RULE)
    http = run.start()
    send(
        http,
        *[
            event("G-DONE", step, system, 20 - n)
            for n, (step, system) in enumerate(
                [("order.received", "crm"), ("order.booked", "erp"), ("order.billed", "billing")]
            )
        ],
        event("G-LATE", "order.received", "crm", 200, amount=100, currency="EUR"),
        event("G-LATE", "order.booked", "erp", 150),
        event("G-LATE", "order.billed", "billing", 100),  # completed, SLA breached
        event("G-STUCK-1", "order.received", "crm", 45, amount=700, currency="USD"),
        event("G-STUCK-2", "order.received", "crm", 80, amount=300, currency="USD"),  # also breached
        event("G-OPEN", "order.received", "crm", 1, amount=5000, currency="USD"),
        event("R-FAIL", "refund.requested", "support", 30, workflow="refund"),
        event(
            "R-FAIL",
            "refund.refused",
            "billing",
            20,
            workflow="refund",
            status="error",
            error={"kind": "business", "message": "outside the refund window"},
        ),
    )
    evaluations(http, 2)
    metrics = MetricsSnapshot.scrape(http)
    overview = http.get("/api/overview").json()

    assert metrics.types["threadline_transactions"] == "gauge"
    for figures in overview["workflows"]:
        workflow = figures["workflow"]
        for state in ("completed", "failed", "stuck", "in_progress"):
            labels = {"tenant": "", "workflow": workflow, "state": state}
            assert metrics.value("threadline_transactions", **labels) == figures[state], (workflow, state)
        breached = sum(
            metrics.value("threadline_transactions_breached", tenant="", workflow=workflow, state=state)
            for state in ("completed", "failed", "stuck", "in_progress")
        )
        assert breached == figures["breached"], workflow
        for risk in figures["value_at_risk"]:
            labels = {"tenant": "", "workflow": workflow, "currency": risk["currency"]}
            assert metrics.value("threadline_value_at_risk", **labels) == risk["amount"]
    assert metrics.value("threadline_transactions", tenant="", workflow="order", state="stuck") == 2
    assert metrics.value("threadline_value_at_risk", tenant="", workflow="order", currency="USD") == 1000
    assert metrics.value("threadline_value_at_risk", tenant="", workflow="order", currency="EUR") == 100
    assert metrics.value("threadline_transactions", tenant="", workflow="refund", state="failed") == 1
    assert metrics.value("threadline_alerts_firing", tenant="", rule="order-sla", severity="critical") == 1

    resolve = http.post("/api/transactions/G-STUCK-1/resolve", json={"comment": "handled by phone"})
    assert resolve.status_code == 201
    evaluations(http, 2)
    after = MetricsSnapshot.scrape(http)

    assert after.value("threadline_transactions", tenant="", workflow="order", state="stuck") == 1
    assert after.value("threadline_transactions_resolved", tenant="", workflow="order") == 1
    assert after.value("threadline_value_at_risk", tenant="", workflow="order", currency="USD") == 300
    assert after.value("threadline_alert_notifications_pending") == 0
    assert after.value("threadline_alert_deliveries_total", receiver="hook", result="delivered") >= 1


def test_the_example_prometheus_rules_use_only_metrics_the_collector_exposes(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    rules_file = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "threadline-rules.yml"
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    run = setup(SLA_RULE)
    http = run.start()
    send(http, event("P-1", "order.received", "crm", 90, amount=1, currency="USD"))
    evaluations(http, 1)
    exposed = set(MetricsSnapshot.scrape(http).types) | {
        name + "_total" for name, kind in MetricsSnapshot.scrape(http).types.items() if kind == "counter"
    }

    used = {name for expr in expressions for name in re.findall(r"\b(threadline_[a-z_]+)\b", expr)}
    assert used and used <= exposed, used - exposed
    assert all(rule.get("alert") and rule.get("annotations") for group in groups for rule in group["rules"])


REFUND_FAILED_RULE = """\
    - name: refund-failed
      workflow: refund
      when: failed
      severity: warning
      receivers: [hook]
"""


def test_a_new_rule_watches_from_when_it_is_first_seen_and_summarises_history_instead_of_firing_it(
    setup: Callable[[str], Setup], receiver: WebhookReceiver
) -> None:
    run = setup(REFUND_FAILED_RULE)
    http = run.start()
    send(
        http,
        event("H-1", "order.received", "crm", 300, amount=100, currency="USD"),
        event("H-2", "order.received", "crm", 200),
    )
    evaluations(http, 2)
    run.stop()
    run.rules = REFUND_FAILED_RULE + SLA_RULE.replace("[hook, chat]", "[hook]")  # order-sla is new
    http = run.start()
    evaluations(http, 2)

    assert receiver.requests == [], "history fired as alerts"
    [rule] = [r for r in http.get("/api/alerts/rules").json()["rules"] if r["name"] == "order-sla"]
    assert rule["already_holding"] == 2 and rule["history_transactions"] == ["H-1", "H-2"]
    assert rule["history"].startswith("2 transactions already met this rule when it started watching")
    assert rule["watching_since"] is not None

    send(
        http,
        event("N-1", "order.received", "crm", 90),  # breached when it arrives: news
        event("N-SOON", "order.received", "crm", 59.9),  # breaches in ~6 s with no event at all
        # a failure arriving late (its events three days old): news when it arrives
        event("R-LATE", "refund.requested", "support", 3 * 24 * 60, workflow="refund"),
        event("R-LATE", "refund.refused", "billing", 3 * 24 * 60 - 1, workflow="refund", status="error"),
        event("H-2", "order.booked", "erp", 1),  # history, still breached: still not news
    )
    for key in ("N-1", "N-SOON", "R-LATE"):
        eventually(partial(receiver.received, key, status="firing"), what=f"the alert of {key}")
    evaluations(http, 2)
    assert receiver.received("H-1") == [] and receiver.received("H-2") == []

    # A history transaction that stops meeting the rule leaves the history: meeting it again is news.
    assert http.post("/api/transactions/H-1/resolve", json={"comment": "cancelled"}).status_code == 201
    evaluations(http, 2)
    assert http.post("/api/transactions/H-1/reopen", json={"comment": "back"}).status_code == 201
    eventually(lambda: receiver.received("H-1", status="firing"), what="H-1 firing once reopened")
    run.stop()
    http = run.start()  # the watch and what is left of its history survive a restart
    evaluations(http, 3)
    assert receiver.received("H-2") == []
    [rule] = [r for r in http.get("/api/alerts/rules").json()["rules"] if r["name"] == "order-sla"]
    assert rule["already_holding"] == 2  # what it found at the start, as it was
