"""What a person sees of business dimensions: the overview grouped by region, a region opening the
queue filtered by it, and a transaction's dimensions on its page, each opening its queue.

A collector of this module's own (its definitions declare ``dimensions:``), the dashboard, headless
Chromium: the fixtures of conftest.py, with ``collector`` and ``seeded`` replaced here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.browser import Browser
from tests.support.collector_process import KEEPING_FAST, CollectorProcess, running_collector
from tests.support.polling import eventually

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("seeded")]

WORKFLOWS = """
workflows:
  quote-to-cash:
    dimensions: [region, customer_tier]
    fail_on: [erp.order.rejected]
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.order.created, system: netsuite, after: [crm.opportunity.won]}
      - {name: erp.order.rejected, system: netsuite, after: [crm.opportunity.won]}
"""
# (key, region): each fails, so each is in the queue
FAILED = (("OPP-EMEA-1", "EMEA"), ("OPP-EMEA-2", "EMEA"), ("OPP-AMER-1", "AMER"))


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    workflows = workdir / "dimensions-workflows.yaml"
    workflows.write_text(WORKFLOWS)
    with running_collector(workdir, workflows, KEEPING_FAST) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(collector: CollectorProcess) -> None:
    now = dt.datetime.now(dt.UTC)
    events = [
        {
            "correlation_id": key,
            "workflow": "quote-to-cash",
            "step": step,
            "system": "salesforce",
            "timestamp": (now - dt.timedelta(minutes=minutes)).isoformat(),
            "attributes": {"region": region, "customer_tier": "enterprise"},
        }
        for key, region in FAILED
        for step, minutes in (("crm.opportunity.won", 20), ("erp.order.rejected", 10))
    ]
    with httpx.Client(base_url=collector.url, timeout=30) as api:
        assert api.post("/v1/events", json={"events": events}).status_code == 200
        eventually(
            lambda: (
                len(api.get("/api/transactions", params={"dimension": "region:EMEA"}).json()["items"]) == 2
            ),
            what="the dimensions kept",
        )


def test_the_overview_grouped_by_region_opens_the_queue_of_one_region(browser: Browser) -> None:
    browser.open("/?range=all&group_by=region", ready="#overview-groups .ag-row")
    rows = browser.all_text("#overview-groups .ag-row")
    assert len(rows) == 2 and rows[0].startswith("EMEA") and rows[1].startswith("AMER")
    browser.click(browser.visible("#overview-groups .ag-row a.tl-cell-link"))  # EMEA, the first
    browser.until(lambda: "dimension=region" in browser.path(), message="the queue of EMEA")
    browser.visible('#queue-grid .ag-row[row-id="OPP-EMEA-1"]')
    browser.visible('#queue-grid .ag-row[row-id="OPP-EMEA-2"]')
    assert not browser.driver.find_elements("css selector", '#queue-grid .ag-row[row-id="OPP-AMER-1"]')


def test_a_transaction_shows_its_dimensions_each_opening_its_queue(browser: Browser) -> None:
    browser.open("/transactions/OPP-AMER-1", ready="#transaction-dimensions")
    assert browser.text("#transaction-dimensions").split() == [
        "region",
        "AMER",
        "customer_tier",
        "enterprise",
    ]
    browser.click(browser.visible("#transaction-dimensions a"))
    browser.visible('#queue-grid .ag-row[row-id="OPP-AMER-1"]')
    assert not browser.driver.find_elements("css selector", '#queue-grid .ag-row[row-id="OPP-EMEA-1"]')
