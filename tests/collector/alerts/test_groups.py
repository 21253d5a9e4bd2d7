"""Notification groups against the demo: its history, its alert rules, a real receiver.

The demo's collector first evaluates its rules before the simulator's back-fill arrives, so every
transaction of that history that meets a rule is news: one alert each (248 in the issue). Here the
simulator sends the demo's history (seed 7, three days) through a real collector over HTTP; then the
evaluator and the dispatcher run on that store with a clock of the test's: a first evaluation as of
the moment the history ends (the demo's start, before any of it arrived), then one every 30 s (the
demo's interval) from when it is stored, posting to a real HTTP receiver.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.support.collector_process import CollectorProcess
from tests.support.webhook_receiver import WebhookReceiver
from threadline.collector.alert_rules import AlertRule
from threadline.collector.alerts import payloads, records
from threadline.collector.alerts.groups import Grouper
from threadline.collector.alerts.service import Alerting
from threadline.collector.alerts.settings import AlertSettings
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.storage import Store
from threadline.collector.workflows import load
from threadline.simulator import simulate

pytestmark = pytest.mark.slow

DEMO_SEED = 7  # threadline demo's
STEP = dt.timedelta(seconds=30)  # THREADLINE_ALERT_INTERVAL's default, as in the demo
GOAL = 20  # notifications per receiver in the demo's first 10 minutes


@pytest.mark.timeout(1200)  # the simulator's three days of history, on a shared machine
def test_the_demos_first_ten_minutes_send_at_most_20_notifications_per_receiver_listing_every_alert(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver().start()
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0)
    loader = CollectorProcess(
        store_dir=tmp_path / "store", env={"THREADLINE_ALERT_INTERVAL": "0"}, isolated=True
    )
    loader.start()
    try:
        simulate(loader.url, rate=0, seed=DEMO_SEED, duration_s=0, now=anchor)
    finally:
        loader.stop()

    store = Store(f"chdb://{tmp_path / 'store'}").open()
    workflows = load(EXAMPLE_WORKFLOWS)
    now = [anchor]
    alerting = Alerting(
        store,
        lambda: workflows,
        CollectorRegistry(),
        AlertSettings(interval=30),
        environ={
            "OPS_WEBHOOK_URL": receiver.url("/webhook"),
            "OPS_SLACK_WEBHOOK_URL": receiver.url("/slack"),
        },
        clock=lambda: now[0],
    )
    sent_by: dict[int, int] = {}
    try:
        # The demo's collector evaluates its rules before the history arrives: all of it is news.
        alerting.evaluate(as_of=anchor)
        start = anchor + STEP  # then every 30 s
        with httpx.Client(timeout=10) as client:
            # 10 minutes, then long enough for what fired in them to be told.
            for step in range(33):
                now[0] = start + step * STEP
                alerting.evaluate(as_of=now[0])
                alerting.dispatcher.deliver_due(client)
                sent_by[step] = len(receiver.requests)
        fired = [
            record
            for record in records.list_alerts(store, "", records.AlertFilters(), None, 10_000)[0]
            if record.fired_at <= start + 20 * STEP
        ]
    finally:
        store.close()
        receiver.stop()

    first_ten_minutes = Counter(request.path for request in receiver.requests[: sent_by[20]])
    assert len(fired) > 200, "the demo's history no longer fires a burst: this test shows nothing"
    assert set(first_ten_minutes) == {"/webhook", "/slack"}
    assert max(first_ten_minutes.values()) <= GOAL, first_ten_minutes
    assert all(request.answered == 200 for request in receiver.requests)

    rules = {rule.name: rule for rule in workflows.alerts}
    listed = {
        path: {
            alert["alert"]["id"]
            for request in receiver.requests
            if request.path == path
            for alert in request.body.get("alerts", [])
        }
        for path in ("/webhook",)
    }
    slack_text = "".join(str(request.body) for request in receiver.requests if request.path == "/slack")
    # A Slack message lists what fits its blocks and counts the rest ("… and 12 more", with the link
    # to the Alerts page): a burst is told of whole, if not line by line.
    counted = sum(int(more) for more in re.findall(r"… and (\d+) more", slack_text))
    not_listed = []
    for record in fired:
        for target in rules[record.rule].receivers:
            if target.name == "ops-webhook":
                assert record.alert_id in listed["/webhook"], f"{record.rule} {record.subject} never told"
            elif f"|{record.subject or record.rule}>" not in slack_text:
                not_listed.append(f"{record.rule} {record.subject}")
    assert len(not_listed) <= counted, not_listed
    print(f"\n{len(fired)} alerts fired; notifications in the first 10 minutes: {dict(first_ten_minutes)}")


# --- the timers, on a real store with a clock of the test's -----------------------------------

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
RULES_FILE = """\
workflows:
  order:
    steps:
      - {name: order.received, system: crm}
      - {name: order.booked, system: erp}
alerts:
  receivers:
    hook: {type: webhook, url: "http://127.0.0.1:9/hook", group_by: [rule, system], group_wait: 30s}
  rules:
    - {name: late, when: sla_breached, severity: critical, receivers: [hook],
       group_interval: 5m, repeat_interval: 1h}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path / 'store'}").open()
    yield opened
    opened.close()


def queue(store: Store, rule: AlertRule, subject: str, system: str, event: str, at: dt.datetime) -> None:
    """An alert of ``rule`` about ``subject`` firing (or resolving) at ``at``, queued for its receivers,
    as the evaluator writes it."""
    alert = records.AlertRecord(
        tenant="acme",
        alert_id=records.alert_id("acme", rule.name, subject, 0),
        rule=rule.name,
        condition=rule.when,
        severity=rule.severity,
        workflow="order",
        subject=subject,
        status=event,
        summary=f"{subject} is late",
        transactions=(subject,),
        context="",
        fired_at=at,
        resolved_at=at if event == "resolved" else None,
        resolution="",
        version=records.next_version(),
    )
    labels = payloads.labels_of(alert, rule, None) | {"system": system}
    payload = payloads.alert_payload(
        event=event,
        alert=alert,
        rule=rule,
        summary=alert.summary,
        figures={},
        transactions=[{"correlation_id": subject}],
        transactions_total=1,
        dashboard_url="http://dashboard",
        labels=labels,
    )
    alert = replace(alert, context=orjson.dumps(payload).decode())
    records.save_alerts(store, [alert])
    records.save_notifications(store, Alerting._notifications(alert, event, rule, payload, at))


def told(store: Store) -> list[list[tuple[str, str]]]:
    """Each group notification so far, oldest first: (subject, status) of each alert it lists."""
    rows = store.rows(
        "SELECT payload FROM alert_group_notifications FINAL ORDER BY created_at, notification_id"
    )
    return [
        [(alert["alert"]["subject"], alert["status"]) for alert in orjson.loads(row["payload"])["alerts"]]
        for row in rows
    ]


def test_a_group_waits_for_its_burst_then_tells_changes_at_most_every_interval_and_repeats_what_still_fires(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "workflows.yaml").write_text(RULES_FILE)
    [rule] = load(tmp_path / "workflows.yaml").alerts
    grouper = Grouper(store, lambda: [rule], "http://dashboard")

    queue(store, rule, "ORD-1", "erp", "firing", T0)
    queue(store, rule, "ORD-2", "erp", "firing", T0 + dt.timedelta(seconds=10))
    queue(store, rule, "ORD-3", "crm", "firing", T0 + dt.timedelta(seconds=10))  # another group
    assert grouper.flush_due(T0 + dt.timedelta(seconds=29)) == pytest.approx(1)
    assert told(store) == []
    grouper.flush_due(T0 + dt.timedelta(seconds=40))  # group_wait from each group's first alert
    assert sorted(told(store)) == [[("ORD-1", "firing"), ("ORD-2", "firing")], [("ORD-3", "firing")]]

    # Changes wait for group_interval (5m) after the group's last notification: one notification.
    queue(store, rule, "ORD-4", "erp", "firing", T0 + dt.timedelta(minutes=1))
    queue(store, rule, "ORD-1", "erp", "resolved", T0 + dt.timedelta(minutes=2))
    assert grouper.flush_due(T0 + dt.timedelta(minutes=5)) == pytest.approx(40)
    assert len(told(store)) == 2
    grouper.flush_due(T0 + dt.timedelta(minutes=5, seconds=40))
    assert told(store)[-1] == [("ORD-4", "firing"), ("ORD-1", "resolved")]

    # Nothing changes: what still fires is told again after repeat_interval (1h), once.
    grouper.flush_due(T0 + dt.timedelta(minutes=30))
    assert len(told(store)) == 3
    grouper.flush_due(T0 + dt.timedelta(hours=1, minutes=6))
    assert len(told(store)) == 5  # both groups
    assert sorted(told(store)[-2:]) == [[("ORD-2", "firing"), ("ORD-4", "firing")], [("ORD-3", "firing")]]
    grouper.flush_due(T0 + dt.timedelta(hours=1, minutes=7))
    assert len(told(store)) == 5
