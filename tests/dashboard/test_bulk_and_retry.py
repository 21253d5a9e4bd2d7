"""Acting on many transactions from the queue, and asking an integration to retry, in Chromium.

One collector whose workflows file declares a "request retry" action for Stripe's steps, its URL a
real HTTP server of the test; the dashboard without sign-in, its (anonymous) key allowed to act.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from selenium.webdriver.common.by import By

from tests.dashboard import scenario
from tests.dashboard.browser import Browser
from tests.support.collector_process import CollectorProcess
from tests.support.webhook_receiver import WebhookReceiver
from threadline.collector.config import EXAMPLE_WORKFLOWS

pytestmark = pytest.mark.slow

ACTIONS = [
    {
        "name": "reactivate-subscription",
        "kind": "retry",
        "system": "stripe",
        "url_env": "TL_TEST_STRIPE_RETRY_URL",
    }
]
OPERATOR = "Dana Ops"
SELECTION = "ag-Grid-SelectionColumn"  # AG Grid's checkbox column


@pytest.fixture(scope="module")
def integration() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(status=202).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def collector(workdir: Path, integration: WebhookReceiver) -> Iterator[CollectorProcess]:
    definitions = yaml.safe_load(EXAMPLE_WORKFLOWS.read_text())
    definitions["actions"] = ACTIONS
    workflows = workdir / "workflows.yaml"
    workflows.write_text(yaml.safe_dump(definitions, sort_keys=False))
    env = {
        "TL_TEST_STRIPE_RETRY_URL": integration.url("/stripe/retry"),
        "THREADLINE_SHARED_READ_SECONDS": "0",
    }
    running = CollectorProcess(
        store_dir=workdir / "store", workflows=workflows, env=env, isolated=True
    ).start()
    try:
        yield running
    finally:
        running.stop()


def comment_and_submit(browser: Browser, comment: str) -> None:
    browser.visible("#action-comment").send_keys(comment)
    operator = browser.visible("#action-operator")
    operator.clear()
    operator.send_keys(OPERATOR)
    browser.click("#action-submit")


def test_rows_ticked_in_the_queue_are_resolved_together_each_with_its_own_audit_entry(
    seeded: scenario.Scenario, browser: Browser, api: httpx.Client
) -> None:
    browser.open("/queue", ready="#queue-grid .ag-row")
    assert browser.visible(".tl-action-resolve_selected").get_attribute("disabled") is not None
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#queue-grid .ag-pinned-left-cols-container .ag-row")
    keys = [key for key in (row.get_attribute("row-id") for row in rows) if key != scenario.STUCK_KEY][:2]
    assert len(keys) == 2, keys

    for key in keys:
        checkbox = f'[col-id="{SELECTION}"] .ag-checkbox-input-wrapper'
        browser.click(f'#queue-grid .ag-row[row-id="{key}"] {checkbox}')
    browser.wait_text("#queue-selected", "2 selected")
    browser.click(".tl-action-resolve_selected")
    assert "Resolve 2 transactions" in browser.text("#action-title")
    comment_and_submit(browser, "Booked by hand after the outage")

    browser.wait_text("#action-result", "Resolved 2 of 2 transactions")
    for key in keys:
        [entry] = api.get("/api/audit", params={"transaction": key}).json()["items"]
        assert (entry["action"], entry["operator"], entry["comment"]) == (
            "resolve",
            OPERATOR,
            "Booked by hand after the outage",
        )
    browser.until(
        lambda: not browser.driver.find_elements(By.CSS_SELECTOR, f'#queue-grid .ag-row[row-id="{keys[0]}"]')
    )


def test_request_retry_on_the_transaction_page_posts_to_the_integration_and_shows_its_answer(
    seeded: scenario.Scenario, browser: Browser, api: httpx.Client, integration: WebhookReceiver
) -> None:
    key = scenario.STUCK_KEY
    browser.open(f"/transactions/{key}", ready=".tl-retry-action")

    browser.click(".tl-retry-action")
    assert "reactivate-subscription" in browser.text("#action-title")
    comment_and_submit(browser, "Stripe is back, please retry")

    browser.wait_text("#action-result", "took it (HTTP 202)")
    [sent] = [r for r in integration.requests if r.path == "/stripe/retry"]
    assert (sent.body["transaction_id"], sent.body["system"], sent.body["operator"]) == (
        key,
        "stripe",
        OPERATOR,
    )
    assert sent.body["keys"]["erp.sales_order"] == scenario.STUCK_ALIAS
    trail = browser.wait_text("#audit-trail", "Retry requested")
    assert "Stripe is back, please retry" in trail and "took it (HTTP 202)" in trail
    [entry] = api.get("/api/audit", params={"transaction": key, "action": "retry"}).json()["items"]
    assert entry["outcome"]["status_code"] == 202
