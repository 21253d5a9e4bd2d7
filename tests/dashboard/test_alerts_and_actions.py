"""Alerts, exception groups and operators' actions, end to end: what on-call sees and does.

One collector (API keys on, alerting every second, webhook receivers on a local HTTP server: one
that answers 200, one that answers 500, one whose URL is never set) with the scenario's events, one
dashboard holding a key that reads and acts, one browser. The tests run in order and build on each other, as
an on-call shift does: see what fires, open an alert from its notification link, acknowledge an
exception group, resolve a transaction (and see it leave the queue and its alert resolve), reopen it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from selenium.webdriver.common.by import By

from tests.dashboard import scenario
from tests.dashboard.browser import Browser, DashboardProcess
from tests.support.collector_process import CollectorProcess
from tests.support.otlp_receiver import free_port
from tests.support.polling import eventually
from tests.support.webhook_receiver import WebhookReceiver
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.dashboard import formatting as fmt

pytestmark = pytest.mark.slow

T = TypeVar("T")
INGEST, READ = "tl_alerts_ingest", "tl_alerts_dashboard"
KEY_NAME = "dashboard"  # its key's name: the actor the audit trail records for the dashboard
KEYS = f"""
keys:
  - {{name: integrations, key: {INGEST}, tenant: acme, roles: [ingest]}}
  - {{name: {KEY_NAME}, key: {READ}, tenant: acme, roles: [read, act]}}
"""
ALERTS = {
    "receivers": {
        # Grouped by rule (the default), with timers short enough for a test.
        "ops-webhook": {
            "type": "webhook",
            "url_env": "TL_TEST_HOOK_URL",
            "group_wait": "0.1s",
            "group_interval": "1s",
        },
        "pager": {  # answers 500: given up after 3
            "type": "webhook",
            "url_env": "TL_TEST_PAGER_URL",
            "group_wait": "0.1s",
            "group_interval": "1s",
        },
        "ops-slack": {"type": "slack", "url_env": "TL_TEST_SLACK_URL"},  # never set: skipped
    },
    "rules": [
        {
            "name": "q2c-sla-breach",
            "workflow": "quote-to-cash",
            "when": "sla_breached",
            "severity": "critical",
            "receivers": ["ops-webhook", "pager"],
        },
        {
            "name": "stuck-over-2h",
            "when": "stuck_longer_than",
            "duration": "2h",
            "severity": "warning",
            "receivers": ["ops-webhook"],
        },
        {
            "name": "credit-governance",
            "workflow": "support-credit",
            "when": "violation",
            "severity": "critical",
            "receivers": ["ops-webhook", "ops-slack"],
        },
        {
            "name": "value-at-risk",
            "when": "value_at_risk_above",
            "amount": 100000,
            "currency": "USD",
            "severity": "info",
            "receivers": ["ops-webhook"],
        },
    ],
}
OPERATOR = "Dana Ops"
ACK_COMMENT = "Stripe incident INC-4711: retries paused until Stripe recovers"
BROKEN = "/broken"  # the pager's URL: the receiver answers it with 500
RESOLVE_COMMENT = "Subscription activated by hand in Stripe (INC-4711)"


def write_workflows(folder: Path) -> Path:
    """The example workflows with this module's ``alerts:`` section."""
    definitions = yaml.safe_load((EXAMPLE_WORKFLOWS).read_text())
    definitions["alerts"] = ALERTS
    path = folder / "workflows.yaml"
    path.write_text(yaml.safe_dump(definitions, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(refusing=frozenset({BROKEN})).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def dashboard_port() -> int:
    """Chosen before the collector starts, so the links in its notifications point at this dashboard."""
    return free_port()


@pytest.fixture(scope="module")
def collector(workdir: Path, receiver: WebhookReceiver, dashboard_port: int) -> Iterator[CollectorProcess]:
    keys = workdir / "keys.yaml"
    keys.write_text(KEYS)
    env = {
        "THREADLINE_API_KEYS": str(keys),
        "THREADLINE_ALERT_INTERVAL": "1",
        "THREADLINE_ALERT_RETRY_SECONDS": "0.2",
        "THREADLINE_ALERT_RETRY_MAX_SECONDS": "0.5",
        "THREADLINE_ALERT_MAX_ATTEMPTS": "3",
        "THREADLINE_DASHBOARD_URL": f"http://127.0.0.1:{dashboard_port}",
        "TL_TEST_HOOK_URL": receiver.url("/hook"),
        "TL_TEST_PAGER_URL": receiver.url(BROKEN),
    }
    running = CollectorProcess(
        store_dir=workdir / "store", workflows=write_workflows(workdir), env=env, isolated=True
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def seeded(collector: CollectorProcess) -> scenario.Scenario:
    events = scenario.build()
    events.send(collector.url, api_key=INGEST)
    return events


@pytest.fixture(scope="module")
def api(collector: CollectorProcess) -> Iterator[httpx.Client]:
    """The API with the dashboard's key: what the dashboard must show."""
    headers = {"Authorization": f"Bearer {READ}"}
    with httpx.Client(base_url=collector.url, timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def dashboard(collector: CollectorProcess, workdir: Path, dashboard_port: int) -> Iterator[DashboardProcess]:
    running = DashboardProcess(collector.url, workdir, port=dashboard_port, api_key=READ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def settled(seeded: scenario.Scenario, api: httpx.Client, receiver: WebhookReceiver) -> dict[str, Any]:
    """Wait until the alerts have fired and been delivered (or given up), and the count holds still."""

    def sla_alert() -> dict[str, Any] | None:
        items = api.get(
            "/api/alerts", params={"rule": "q2c-sla-breach", "transaction": scenario.BREACHED_KEY}
        )
        found = items.json()["items"]
        pager = [n for n in found[0]["notifications"] if n["receiver"] == "pager"] if found else []
        return found[0] if pager and pager[0]["status"] == "failed" else None

    alert = eventually(sla_alert, timeout=45, what="the SLA alert, given up on by the pager")
    eventually(
        lambda: receiver.firing("q2c-sla-breach", scenario.BREACHED_KEY), timeout=45, what="the webhook"
    )

    def stable() -> int | None:
        first = api.get("/api/alerts", params={"status": "firing", "limit": 1}).json()["firing"]
        time.sleep(2.5)  # more than two evaluations
        second = api.get("/api/alerts", params={"status": "firing", "limit": 1}).json()["firing"]
        return second if first == second else None

    eventually(stable, timeout=45, what="a firing count that holds still")
    return alert


def row_cells(browser: Browser, grid: str, row_id: str) -> dict[str | None, str]:
    """A grid row's visible cells by column id (pinned and scrolled parts together)."""
    selector = f'#{grid} .ag-row[row-id="{row_id}"] .ag-cell'
    browser.visible(selector)
    return {
        cell.get_attribute("col-id"): cell.text.strip()
        for cell in browser.driver.find_elements(By.CSS_SELECTOR, selector)
    }


def row_ids(browser: Browser, grid: str) -> set[str | None]:
    return {
        row.get_attribute("row-id")
        for row in browser.driver.find_elements(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row")
    }


def test_the_alerts_page_shows_what_fires_and_who_was_told(
    browser: Browser, api: httpx.Client, settled: dict[str, Any]
) -> None:
    browser.open("/alerts", ready="#alerts-grid .ag-row")
    page = api.get("/api/alerts", params={"limit": 200}).json()
    assert page["firing"] > 0
    assert browser.text("#alerts-firing") == fmt.count(page["firing"])
    assert browser.text("#alerts-resolved") == fmt.count(page["resolved"])
    assert browser.text("#alerts-badge") == fmt.count(page["firing"])  # in the navbar, on every page
    assert row_ids(browser, "alerts-grid") == {item["id"] for item in page["items"]}
    critical = sum(
        1 for item in page["items"] if item["status"] == "firing" and item["severity"] == "critical"
    )
    assert f"{critical} critical" in browser.text("#alerts-firing-detail")

    # The SLA alert: severity, the transaction it is about (a link), and each receiver's delivery.
    cells = row_cells(browser, "alerts-grid", settled["id"])
    assert cells["severity_rank"] == "Critical" and cells["status"] == "Firing"
    assert cells["rule"] == "q2c-sla-breach" and cells["subject"] == scenario.BREACHED_KEY
    link = browser.visible(f'#alerts-grid .ag-row[row-id="{settled["id"]}"] [col-id="subject"] a')
    assert urlsplit(link.get_attribute("href")).path == f"/transactions/{scenario.BREACHED_KEY}"
    deliveries = cells["deliveries"]
    assert "ops-webhook" in deliveries and "delivered" in deliveries
    assert "pager" in deliveries and "failed after 3 attempts" in deliveries and "HTTP 500" in deliveries

    # The rules in force, their receivers (a URL never shown), and when they were last evaluated.
    rules = api.get("/api/alerts/rules").json()
    assert row_ids(browser, "alerts-rules-grid") == {rule["name"] for rule in rules["rules"]}
    assert "not set" in browser.text("#receiver-ops-slack")
    assert "$TL_TEST_SLACK_URL" in browser.text("#receiver-ops-slack")
    assert "configured" in browser.text("#receiver-pager")
    assert "http://" not in browser.text("#alerts-receivers")
    assert "every 1s" in browser.text("#alerts-rules-note")
    assert browser.text("#alerts-evaluated") in ("just now", "Not yet") or "ago" in browser.text(
        "#alerts-evaluated"
    )

    # Filters live in the URL: the status segments are links, the rest read the URL too.
    browser.click("#alerts-status-firing")
    browser.until(lambda: "status=firing" in browser.path())
    browser.open("/alerts?severity=critical", ready="#alerts-grid .ag-row")
    critical_page = api.get("/api/alerts", params={"severity": "critical", "limit": 200}).json()
    assert row_ids(browser, "alerts-grid") == {item["id"] for item in critical_page["items"]}
    severities = browser.all_text('#alerts-grid .ag-center-cols-container [col-id="severity_rank"]')
    assert set(severities) == {"Critical"}

    # A click on an alert opens its detail (in the URL, so the view can be shared).
    browser.click(f'#alerts-grid .ag-row[row-id="{settled["id"]}"] [col-id="summary"]')
    browser.until(lambda: f"alert={settled['id']}" in browser.path())
    browser.wait_text("#alert-detail", "q2c-sla-breach")


def test_the_link_in_a_notification_opens_the_alert(
    browser: Browser, api: httpx.Client, receiver: WebhookReceiver, dashboard: DashboardProcess
) -> None:
    [payload] = receiver.firing("q2c-sla-breach", scenario.BREACHED_KEY)
    link = payload["alert"]["link"]
    assert link.startswith(f"{dashboard.url}/alerts?alert=")
    browser.open(link.removeprefix(dashboard.url), ready="#alert-detail")
    detail = api.get(f"/api/alerts/{payload['alert']['id']}").json()

    assert browser.text("#alert-detail-summary") == detail["summary"]
    assert browser.text("#alert-detail-status") == "Firing"
    figures = browser.text("#alert-detail-figures").lower()
    assert "breached by" in figures and "sla" in figures
    browser.visible(f'#alert-transactions a[href="/transactions/{scenario.BREACHED_KEY}"]')

    # Every delivery attempt, with what the receiver answered.
    attempts = sum(max(len(n["history"]), 1) for n in detail["notifications"])
    rows = browser.driver.find_elements(
        By.CSS_SELECTOR, "#alert-deliveries .ag-center-cols-container .ag-row"
    )
    assert len(rows) == attempts
    pager = [row.text for row in rows if "pager" in row.text]
    assert len(pager) == 3 and all("500" in text and "Failed" in text for text in pager)
    assert any("ops-webhook" in row.text and "200" in row.text for row in rows)
    browser.screenshot("alert-detail")  # light only: the dark theme is in the alerts screenshots

    # Its transaction is one click away; an unknown alert says so.
    browser.click(f'#alert-transactions a[href="/transactions/{scenario.BREACHED_KEY}"]')
    browser.until(lambda: browser.path() == f"/transactions/{scenario.BREACHED_KEY}")
    browser.wait_text(".tl-page-title", scenario.BREACHED_KEY)
    browser.open("/alerts?alert=no-such-alert", ready="#alert-detail")
    assert "No alert has this id" in browser.text("#alert-detail")


def group_row(browser: Browser, kind: str, system: str) -> str:
    return f'#exceptions [data-group="{kind}/{system}"]'


def test_acknowledging_an_exception_group_from_the_queue(browser: Browser, api: httpx.Client) -> None:
    browser.open("/queue", ready="#exceptions")
    report = api.get("/api/exceptions").json()
    group = next(g for g in report["groups"] if (g["kind"], g["system"]) == ("timeout", "stripe"))
    row = group_row(browser, "timeout", "stripe")
    text = browser.text(row)
    assert "Not acknowledged yet" in text and f"0 of {group['exceptions']}" in text
    assert scenario.STUCK_KEY in text and "Stripe API did not answer" in text
    assert {g["kind"] for g in report["groups"]} <= set(browser.text("#exceptions").lower().split())

    browser.driver.execute_script("window.__threadlineNoReload = true;")
    browser.click(f"{row} .tl-action-acknowledge")
    browser.visible("#action-comment")
    assert "timeout errors in stripe" in browser.text("#action-title").lower()

    # A comment is required: nothing is recorded without one.
    browser.click("#action-submit")
    browser.until(lambda: "is-invalid" in (browser.visible("#action-comment").get_attribute("class") or ""))
    assert api.get("/api/audit", params={"action": "acknowledge"}).json()["items"] == []

    browser.visible("#action-comment").send_keys(ACK_COMMENT)
    operator = browser.visible("#action-operator")
    operator.clear()
    operator.send_keys(OPERATOR)
    browser.click("#action-submit")
    browser.wait_text("#action-result", "now acknowledged")

    # The group shows its acknowledgement at once, without a reload of the page.
    browser.wait_text(row, f"{group['exceptions']} of {group['exceptions']}")
    text = browser.text(row)
    assert OPERATOR in text and ACK_COMMENT in text and "All acknowledged" in text
    assert browser.driver.execute_script("return window.__threadlineNoReload === true;")

    # The API recorded it: the dashboard's key as the actor, the person, and why.
    [entry] = api.get("/api/audit", params={"action": "acknowledge"}).json()["items"]
    assert (entry["kind"], entry["system"], entry["workflow"]) == ("timeout", "stripe", None)
    assert entry["actor"] == KEY_NAME and entry["operator"] == OPERATOR and entry["comment"] == ACK_COMMENT
    after = api.get("/api/exceptions", params={"kind": "timeout", "system": "stripe"}).json()
    assert after["groups"][0]["acknowledged"] == group["exceptions"]

    # The name is remembered in the browser: the next dialog has it; cancelling records nothing.
    assert OPERATOR in browser.driver.execute_script("return window.localStorage.getItem('operator-name');")
    other = next(g for g in report["groups"] if (g["kind"], g["system"]) != ("timeout", "stripe"))
    browser.click(f"{group_row(browser, other['kind'], other['system'])} .tl-action-acknowledge")
    browser.until(lambda: browser.visible("#action-operator").get_attribute("value") == OPERATOR)
    browser.click("#action-cancel")
    browser.until(lambda: not browser.driver.find_elements(By.CSS_SELECTOR, "#action-comment"))
    assert len(api.get("/api/audit").json()["items"]) == 1
    browser.screenshots("queue-exceptions")


def test_resolving_a_transaction_takes_it_out_of_the_queue_and_resolves_its_alert(
    browser: Browser, api: httpx.Client
) -> None:
    key = scenario.STUCK_KEY
    [alert] = api.get("/api/alerts", params={"rule": "stuck-over-2h", "transaction": key}).json()["items"]
    assert alert["status"] == "firing"
    browser.open(f"/transactions/{key}", ready="#audit-trail")
    assert "No operator has acted" in browser.text("#audit-trail")
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#transaction-resolved")

    browser.click(".tl-action-resolve")
    browser.until(lambda: browser.visible("#action-operator").get_attribute("value") == OPERATOR)
    browser.visible("#action-comment").send_keys(RESOLVE_COMMENT)
    browser.click("#action-submit")
    browser.wait_text("#action-result", "marked resolved")

    # The page says so at once: the badge, who and why, the trail, and the way back.
    assert browser.text("#transaction-resolved") == "Resolved"
    assert browser.text("#transaction-state") == "Stuck"  # its state is still what its events say
    assert RESOLVE_COMMENT in browser.text("#callout-resolved")
    trail = browser.text("#audit-trail")
    assert "Resolved by" in trail and OPERATOR in trail and RESOLVE_COMMENT in trail and KEY_NAME in trail
    browser.visible(".tl-action-reopen")

    # The API has it, by any key of the transaction.
    assert api.get(f"/api/transactions/{key}").json()["resolved"] is True
    [entry] = api.get("/api/audit", params={"transaction": scenario.STUCK_ALIAS}).json()["items"]
    assert (entry["action"], entry["correlation_id"], entry["comment"]) == ("resolve", key, RESOLVE_COMMENT)
    assert entry["actor"] == KEY_NAME and entry["operator"] == OPERATOR
    browser.screenshots("transaction-audit")

    # It leaves the queue (and the badge counts one fewer), and its exception group with it.
    browser.open("/queue", ready="#queue-grid .ag-row")
    assert key not in row_ids(browser, "queue-grid")
    attention: dict[str, str | int | list[str]] = {
        "state": ["stuck", "failed", "in_progress"],
        "attention": "true",
        "limit": 1,
    }
    assert browser.text("#queue-badge") == fmt.count(
        api.get("/api/transactions", params=attention).json()["total"]
    )
    assert not browser.driver.find_elements(By.CSS_SELECTOR, group_row(browser, "timeout", "stripe"))

    # Its alert resolves, and the Alerts page shows it in the history with the reason.
    def resolved() -> dict[str, Any] | None:
        found = api.get(f"/api/alerts/{alert['id']}").json()
        return found if found["status"] == "resolved" else None

    done = eventually(resolved, timeout=45, what="the stuck alert to resolve")
    browser.open("/alerts?status=resolved", ready="#alerts-grid .ag-row")
    assert alert["id"] in row_ids(browser, "alerts-grid")
    assert row_cells(browser, "alerts-grid", alert["id"])["status"] == "Resolved"
    browser.open(f"/alerts?alert={alert['id']}", ready="#alert-detail-resolution")
    assert done["resolution"] in browser.text("#alert-detail-resolution")
    browser.open("/alerts", ready="#alerts-grid .ag-row")
    assert browser.text("#alerts-resolved") == fmt.count(api.get("/api/alerts").json()["resolved"])
    browser.screenshots("alerts")


def test_reopening_and_a_conflicting_action(browser: Browser, api: httpx.Client) -> None:
    key = scenario.STUCK_KEY
    browser.open(f"/transactions/{key}", ready=".tl-action-reopen")
    browser.click(".tl-action-reopen")
    browser.visible("#action-comment").send_keys("Stripe shows no subscription after all")
    browser.click("#action-submit")
    browser.wait_text("#action-result", "open again")
    browser.visible(".tl-action-resolve")
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#transaction-resolved")
    assert [e["action"] for e in api.get("/api/audit", params={"transaction": key}).json()["items"]] == [
        "reopen",
        "resolve",
    ]
    assert api.get(f"/api/transactions/{key}").json()["resolved"] is False

    # Someone else resolves it meanwhile: the stale button is refused (409), said so, and the page catches up.
    response = api.post(f"/api/transactions/{key}/resolve", json={"comment": "done elsewhere"})
    assert response.status_code == 201, response.text
    browser.click(".tl-action-resolve")
    browser.visible("#action-comment").send_keys("booked by hand")
    browser.click("#action-submit")
    assert "already resolved" in browser.text("#action-refused")
    browser.click("#action-cancel")
    browser.visible("#transaction-resolved")
    assert len(api.get("/api/audit", params={"transaction": key}).json()["items"]) == 3


def test_the_alerts_badge_is_on_every_page(browser: Browser, api: httpx.Client) -> None:
    browser.open("/systems?range=all")
    firing = api.get("/api/alerts", params={"status": "firing", "limit": 1}).json()["firing"]
    assert browser.text("#alerts-badge") == fmt.count(firing)
    browser.click("#nav-alerts")
    browser.until(lambda: browser.path() == "/alerts")
    assert browser.text("#alerts-firing") == fmt.count(firing)


def test_the_notification_groups_and_silencing_one_from_the_alerts_page(
    browser: Browser, api: httpx.Client, settled: dict[str, Any]
) -> None:
    groups = api.get("/api/alerts/groups").json()["items"]
    assert groups and all(group["labels"].keys() == {"rule"} for group in groups)
    browser.open("/alerts", ready="#alerts-groups .tl-receiver")
    for group in groups:
        text = browser.text(f"#group-{group['key']}")
        assert group["receiver"] in text and f"rule {group['labels']['rule']}" in text
        assert fmt.plural(group["notifications"], "notification") in text
    assert "No silence" in browser.text("#alerts-silences")

    # Silence the SLA rule's group for the webhook: the dialog asks why and who, as every action.
    [sla] = [g for g in groups if g["receiver"] == "ops-webhook" and g["labels"]["rule"] == "q2c-sla-breach"]
    browser.click(f"#group-{sla['key']} .tl-action-silence")
    assert "q2c-sla-breach" in browser.text("#action-title")
    browser.visible("#action-comment").send_keys("Salesforce sandbox refresh: SLA alerts expected")
    operator = browser.visible("#action-operator")
    operator.clear()
    operator.send_keys(OPERATOR)
    browser.click("#action-submit")
    browser.wait_text("#action-result", "silenced until")

    [silence] = api.get("/api/alerts/silences").json()["items"]
    assert silence["matchers"] == {"rule": "q2c-sla-breach"} and silence["state"] == "active"
    assert silence["created_by"] == KEY_NAME and silence["operator"] == OPERATOR
    browser.wait_text(f"#silence-{silence['id']}", "active")
    assert "Salesforce sandbox refresh" in browser.text(f"#silence-{silence['id']}")

    # Its alerts still show, marked silenced.
    firing = api.get("/api/alerts", params={"rule": "q2c-sla-breach", "status": "firing"}).json()["items"]
    assert firing and all(alert["silenced_by"] == [silence["id"]] for alert in firing)
    browser.open("/alerts?rule=q2c-sla-breach", ready="#alerts-grid .ag-row")
    assert row_cells(browser, "alerts-grid", firing[0]["id"])["summary"].startswith("Silenced")
    browser.screenshots("alerts-silenced")

    # Expire it: it ends now, and the page says so.
    browser.click(f"#silence-{silence['id']} .tl-action-expire")
    browser.visible("#action-comment").send_keys("refresh done")
    browser.click("#action-submit")
    browser.wait_text("#action-result", "ended")
    browser.wait_text(f"#silence-{silence['id']}", "expired")
    [ended] = api.get("/api/alerts/silences").json()["items"]
    assert ended["state"] == "expired" and ended["expired_by"] == KEY_NAME
    assert api.get(f"/api/alerts/{firing[0]['id']}").json()["silenced_by"] == []
    assert [e["action"] for e in api.get("/api/audit", params={"action": "silence"}).json()["items"]] == [
        "silence"
    ]
