"""What a person sees of schema drift: on the Systems page, the attribute Stripe stopped sending
and the one it began to send instead, when, with the counts, each opening its example transaction;
a system without drift says so.

A collector of this module's own, the dashboard, headless Chromium: the fixtures of conftest.py,
with ``collector`` and ``seeded`` replaced here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.browser import Browser
from tests.support.collector_process import KEEPING_FAST, CollectorProcess, running_collector

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("seeded")]

STEP = "billing.subscription.activated"
WORKFLOWS = f"""
workflows:
  quote-to-cash:
    steps:
      - {{name: erp.order.created, system: netsuite}}
      - {{name: {STEP}, system: stripe, after: [erp.order.created]}}
"""


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    workflows = workdir / "drift-workflows.yaml"
    workflows.write_text(WORKFLOWS)
    with running_collector(workdir, workflows, KEEPING_FAST) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(collector: CollectorProcess) -> None:
    change = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=40)

    def activation(number: int, at: dt.datetime, step: str = STEP, **attributes: str) -> dict[str, object]:
        return {
            "correlation_id": f"SO-{number}",
            "workflow": "quote-to-cash",
            "step": step,
            "system": "stripe" if step == STEP else "netsuite",
            "timestamp": at.isoformat(),
            "attributes": attributes,
        }

    events = [activation(n, change - dt.timedelta(minutes=15) * (300 - n), plan="Pro") for n in range(300)]
    events += [
        activation(300 + n, change + dt.timedelta(minutes=1) * n, plan_id="price_pro") for n in range(30)
    ]
    # NetSuite's orders send what they always did.
    events += [
        activation(n, change - dt.timedelta(minutes=14) * (330 - n), "erp.order.created", subsidiary="DE")
        for n in range(330)
    ]
    with httpx.Client(base_url=collector.url, timeout=30) as api:
        for start in range(0, len(events), 250):
            answer = api.post("/v1/events", json={"events": events[start : start + 250]})
            assert answer.status_code == 200 and not answer.json().get("rejected"), answer.text[:500]


def test_the_systems_page_lists_each_drift_and_opens_its_example(browser: Browser) -> None:
    browser.open("/systems?range=all", ready="#systems-drift .ag-row")
    rows = {
        row.get_attribute("row-id"): row.text.split("\n")
        for row in browser.driver.find_elements(
            "css selector", "#systems-drift .ag-center-cols-container .ag-row"
        )
    }
    stopped = rows[f"stripe/{STEP}/plan/missing"]
    assert stopped[:4] == ["stripe", STEP, "plan", "stopped"]
    assert "missing in all 30 since; in 100% of 300 before" in stopped
    new = rows[f"stripe/{STEP}/plan_id/new"]
    assert new[:4] == ["stripe", STEP, "plan_id", "new"]
    assert "in 100% of 30 since; in none of 300 before" in new

    browser.click(
        browser.visible(f'#systems-drift .ag-row[row-id="stripe/{STEP}/plan/missing"] a.tl-cell-link')
    )
    browser.until(lambda: browser.path() == "/transactions/SO-300", message="the example's transaction")


def test_a_system_without_drift_says_so(browser: Browser) -> None:
    browser.open("/systems?range=all&system=netsuite", ready="#systems-no-drift")
    assert "Every step sends the attributes it usually does" in browser.text("#systems-no-drift")
