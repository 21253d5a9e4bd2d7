"""A new user's first minutes: an empty collector, the first event, and a collector that is down.

The empty overview must say how to send the first event (and its curl example must work as shown);
the auto-refresh control must bring the event in without a reload; an API that cannot be reached
must give a clear banner, never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.support.ui import Select

from tests.dashboard.browser import Browser, DashboardProcess
from tests.support.collector_process import CollectorProcess
from tests.support.otlp_receiver import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unreachable(workdir: Path) -> Iterator[DashboardProcess]:
    """A dashboard whose API address has nothing listening."""
    running = DashboardProcess(f"http://127.0.0.1:{free_port()}", workdir).start()
    try:
        yield running
    finally:
        running.stop()


def test_an_empty_collector_explains_how_to_send_the_first_event(
    browser: Browser, collector: CollectorProcess
) -> None:
    browser.open("/", ready="#onboarding")
    text = browser.text("#onboarding")
    assert "Send your first event" in text
    assert f"{collector.url}/v1/events" in text
    assert 'sdk.event("quote-to-cash"' in text
    browser.screenshot("first-run-empty")

    # The curl example, sent as shown, is accepted; with auto-refresh on, the event shows up by itself.
    Select(browser.visible("#refresh-every")).select_by_value("10")
    curl = browser.text("#onboarding pre")
    posted_to, data = re.search(r"POST (\S+)", curl), re.search(r"-d '(.*)'", curl, re.DOTALL)
    assert posted_to and data, curl
    body = json.loads(data[1])
    assert httpx.post(posted_to[1], json=body, timeout=30).status_code == 200
    browser.until(lambda: browser.driver.find_elements("css selector", "#kpi-transactions"), timeout=60)
    assert browser.text("#kpi-transactions") == "1"
    assert browser.text("#kpi-in-progress") == "1"
    Select(browser.visible("#refresh-every")).select_by_value("30")


def test_an_unreachable_api_shows_a_banner_not_a_traceback(unreachable: DashboardProcess) -> None:
    window = Browser(unreachable.url)
    try:
        for path in ("/", "/queue", "/alerts", "/transactions/OPP-1", "/workflows/quote-to-cash", "/systems"):
            window.open(path, ready="#api-unavailable")
            banner = window.text("#api-unavailable")
            assert "Cannot reach the Threadline collector" in banner
            assert unreachable.api_url in banner
            page = window.text("#page")
            assert "Traceback" not in page and "Error" not in window.driver.title
            assert "Waiting for the collector" in page
        window.screenshot("api-unreachable")

        # The search box says so too, in place.
        window.visible("#search-input").send_keys("OPP-1\n")
        assert "unavailable" in window.text("#search-error")
    finally:
        window.quit()
    assert "Traceback" not in unreachable.log()
