"""How the dashboard is served without sign-in: by gunicorn, under a sub-path behind a reverse proxy
(``--base-path /threadline/``), with security headers its pages pass, refusing cross-site requests,
and saying on its first page that whoever reaches it sees the data."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.browser import Browser, DashboardProcess
from tests.support.collector_process import CollectorProcess

pytestmark = pytest.mark.slow

BASE = "/threadline/"
KEY = "OPP-SUBPATH-1"


@pytest.fixture(scope="module")
def dashboard(collector: CollectorProcess, workdir: Path) -> Iterator[DashboardProcess]:
    event = {
        "correlation_id": KEY,
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
    }
    assert httpx.post(collector.url + "/v1/events", json={"events": [event]}).status_code == 200
    running = DashboardProcess(collector.url, workdir, base_path=BASE).start()
    try:
        yield running
    finally:
        running.stop()


def test_gunicorn_serves_it_under_its_base_path_only(dashboard: DashboardProcess) -> None:
    page = httpx.get(dashboard.url + "/")
    assert page.status_code == 200
    assert page.headers["server"].startswith("gunicorn")
    config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', page.text)
    assert config and json.loads(config[1])["requests_pathname_prefix"] == BASE
    assert httpx.get(f"http://127.0.0.1:{dashboard.port}/_dash-layout").status_code == 404


def test_every_answer_carries_the_security_headers(dashboard: DashboardProcess) -> None:
    for path in ("/", "/_dash-layout", "/assets/threadline.css"):
        headers = httpx.get(dashboard.url + path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self' 'sha256-" in policy
        assert "'unsafe-eval'" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_a_request_from_another_site_is_refused(dashboard: DashboardProcess) -> None:
    url = dashboard.url + "/_dash-update-component"
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"}, {}):
        answer = httpx.post(url, json={}, headers=headers)
        assert answer.status_code == 403, headers
        assert answer.json()["error"] == "cross_site"
    same_site = httpx.post(url, json={}, headers={"Origin": f"http://127.0.0.1:{dashboard.port}"})
    assert same_site.status_code != 403  # Dash's own answer to an empty callback request


def test_its_links_stay_under_the_base_path_and_the_pages_pass_the_policy(browser: Browser) -> None:
    browser.open("/", ready="#sign-in-off")
    assert browser.path() == BASE
    note = browser.text("#sign-in-off")
    assert "Sign-in is not configured: anyone who reaches this dashboard sees" in note

    browser.click("#nav-queue")
    browser.wait_text(".tl-page-title", "Operations queue")
    assert browser.path().startswith(BASE + "queue")
    browser.open(f"/transactions/{KEY}", ready="#transaction-state")
    browser.click(".tl-kicker-link")  # the workflow's process map
    browser.until(lambda: browser.path().startswith(BASE + "workflows/quote-to-cash"))
    browser.wait_text(".tl-page-title", "quote-to-cash")
    for path, title in (("/systems", "System health"), ("/alerts", "Alerts")):
        browser.open(path)
        browser.wait_text(".tl-page-title", title)
    browser.click("#nav-overview")
    browser.wait_text(".tl-page-title", "Overview")
    assert browser.path() == BASE
    violations = [
        entry["message"]
        for entry in browser.driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert violations == []
