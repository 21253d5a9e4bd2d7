"""The forecasts on the dashboard: the queue says which transaction will breach its SLA and when,
soonest first; the transaction page shows the ETA beside the SLA clock, or that a stuck one is not
expected to complete without intervention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.collector.test_forecast_api import forecasting_collector
from tests.dashboard.browser import Browser
from tests.support.collector_process import CollectorProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    running = forecasting_collector(workdir)
    try:
        yield running
    finally:
        running.stop()


def test_the_queue_says_when_a_transaction_will_breach_and_its_page_shows_the_eta(browser: Browser) -> None:
    browser.open("/queue?issue=will_breach", ready="#queue-grid .ag-row")

    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#queue-grid .ag-center-cols-container .ag-row")
    first = min(rows, key=lambda row: int(row.get_attribute("row-index") or 0))
    assert first.get_attribute("row-id") == "SOON"  # the soonest deadline first
    forecast = browser.text('#queue-grid .ag-row[row-id="SOON"] [col-id="forecast_seconds"]')
    assert forecast.startswith("will breach in ") and forecast.endswith("m"), forecast

    browser.open("/transactions/SOON", ready="#sla-clock")
    assert browser.text("#sla-eta").startswith("ETA ")
    assert "will breach its SLA" in browser.text("#sla-eta")


def test_a_stuck_transaction_not_expected_to_complete_says_so_beside_its_sla_clock(browser: Browser) -> None:
    browser.open("/transactions/STALLED", ready="#sla-clock")

    assert browser.text("#sla-eta") == (
        "No ETA: not expected to complete without intervention · will breach its SLA"
    )
