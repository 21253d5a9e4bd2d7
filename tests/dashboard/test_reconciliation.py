"""What a person sees of reconciliation: the transaction page calls out the values its systems
disagree on, and the queue's "Values disagree" issue lists such transactions, completed ones too.

A collector of this module's own (its definitions declare ``reconcile:``), the dashboard, headless
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

WORKFLOWS = Path(__file__).parents[1] / "fixtures" / "reconciliation-workflows.yaml"
KEY = "OPP-DISAGREE"


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    with running_collector(workdir, WORKFLOWS, KEEPING_FAST) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(collector: CollectorProcess) -> None:
    now = dt.datetime.now(dt.UTC)
    events = [
        {
            "correlation_id": KEY,
            "workflow": "quote-to-cash",
            "step": step,
            "system": system,
            "timestamp": (now - dt.timedelta(minutes=minutes)).isoformat(),
            "amount": amount,
            "currency": "USD",
            "attributes": {"plan": "pro"},
        }
        for step, system, minutes, amount in (
            ("crm.opportunity.won", "salesforce", 20, 48000),
            ("billing.subscription.activated", "stripe", 10, 46000),
        )
    ]
    with httpx.Client(base_url=collector.url, timeout=30) as api:
        assert api.post("/v1/events", json={"events": events}).status_code == 200
        eventually(
            lambda: api.get("/api/transactions", params={"issue": "mismatch"}).json()["items"],
            what="the mismatch derived",
        )


def test_the_transaction_page_shows_the_mismatch_and_the_queue_filters_on_it(browser: Browser) -> None:
    browser.open(f"/transactions/{KEY}", ready="#callout-mismatch")
    callout = browser.text("#callout-mismatch")
    assert "amount differs beyond 0.5%" in callout
    assert "salesforce" in callout and "$48,000" in callout and "$46,000" in callout

    browser.open("/queue?issue=mismatch", ready="#queue-grid .ag-row")
    browser.visible(f'#queue-grid .ag-row[row-id="{KEY}"]')  # completed, and listed all the same
    assert browser.text("#queue-count-mismatch").startswith("1")
