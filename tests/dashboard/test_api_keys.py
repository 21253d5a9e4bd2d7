"""A collector that requires API keys: the dashboard passes its key through, says when it has none,
and acts only with a key that may act, for a person who names themselves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.browser import Browser, DashboardProcess
from tests.dashboard.dash_requests import submit_action
from tests.support.collector_process import CollectorProcess

pytestmark = pytest.mark.slow

INGEST, READ, ACT = "tl_test_ingest", "tl_test_dashboard", "tl_test_operations"
KEYS = f"""
keys:
  - {{name: integrations, key: {INGEST}, tenant: acme, roles: [ingest]}}
  - {{name: dashboard, key: {READ}, tenant: acme, roles: [read]}}
  - {{name: operations, key: {ACT}, tenant: acme, roles: [read, act]}}
"""


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    keys = workdir / "keys.yaml"
    keys.write_text(KEYS)
    running = CollectorProcess(
        store_dir=workdir / "store", env={"THREADLINE_API_KEYS": str(keys)}, isolated=True
    ).start()
    event = {
        "correlation_id": "OPP-7",
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
    }
    response = httpx.post(
        running.url + "/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {INGEST}"}
    )
    assert response.status_code == 200, response.text
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def dashboard(collector: CollectorProcess, workdir: Path) -> Iterator[DashboardProcess]:
    running = DashboardProcess(collector.url, workdir, api_key=READ).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_dashboard_reads_with_its_key(browser: Browser) -> None:
    browser.open("/?range=all", ready="#kpi-transactions")
    assert browser.text("#kpi-transactions") == "1"
    browser.open("/transactions/OPP-7", ready="#transaction-state")
    assert browser.text("#transaction-state") == "In progress"


def test_without_a_key_it_says_what_to_do(collector: CollectorProcess, workdir: Path) -> None:
    keyless = DashboardProcess(collector.url, workdir).start()
    window = Browser(keyless.url)
    try:
        window.open("/", ready="#api-unauthorized")
        banner = window.text("#api-unauthorized")
        assert "refused the dashboard's API key" in banner and "--api-key" in banner
        assert "Traceback" not in window.text("#page")
    finally:
        window.quit()
        keyless.stop()


def audit(collector: CollectorProcess) -> list[dict[str, Any]]:
    response = httpx.get(collector.url + "/api/audit", headers={"Authorization": f"Bearer {READ}"})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def submit_directly(dashboard: DashboardProcess, operator: str) -> httpx.Response:
    """What anyone who reaches the dashboard can send: the "resolve OPP-7" dialog's submit callback,
    as a plain JSON POST to Dash's callback endpoint, no browser involved."""
    request = {"action": "resolve", "key": "OPP-7"}
    return submit_action(dashboard.url, request, "closing it from outside", operator)


def test_with_a_read_only_key_its_actions_are_off_and_say_why(browser: Browser) -> None:
    browser.open("/transactions/OPP-7", ready="#actions-disabled")
    assert "may read but not act" in browser.text("#actions-disabled")
    assert browser.visible(".tl-resolve-action").get_attribute("disabled")
    browser.screenshot("read-only-actions")


def test_a_direct_post_to_a_read_only_dashboard_changes_nothing(
    collector: CollectorProcess, dashboard: DashboardProcess
) -> None:
    answer = submit_directly(dashboard, operator="nobody")
    assert audit(collector) == []
    assert answer.status_code == 200 and "may read but not act" in answer.text


def test_an_acting_dashboard_acts_only_for_someone_who_names_themselves(
    collector: CollectorProcess, workdir: Path
) -> None:
    acting = DashboardProcess(collector.url, workdir, api_key=ACT).start()
    try:
        unnamed = submit_directly(acting, operator="  ")
        assert unnamed.status_code == 200
        assert unnamed.json()["response"]["action-operator"]["invalid"] is True
        assert audit(collector) == []
        named = submit_directly(acting, operator="Dana Ops")
        assert named.status_code == 200, named.text
    finally:
        acting.stop()
    [entry] = audit(collector)
    assert (entry["action"], entry["actor"], entry["operator"]) == ("resolve", "operations", "Dana Ops")
