"""A collector that requires API keys: the dashboard passes its key through, and says when it has none."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.browser import Browser, DashboardProcess
from tests.support.collector_process import CollectorProcess

pytestmark = pytest.mark.slow

INGEST, READ = "tl_test_ingest", "tl_test_dashboard"
KEYS = f"""
keys:
  - {{name: integrations, key: {INGEST}, tenant: acme, roles: [ingest]}}
  - {{name: dashboard, key: {READ}, tenant: acme, roles: [read]}}
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
