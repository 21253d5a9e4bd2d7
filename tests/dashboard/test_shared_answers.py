"""A page drawn from answers the collector shared between viewers says how old they are."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.browser import Browser
from tests.support.collector_process import CollectorProcess
from tests.support.ingest import business_event

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    # Every answer counts as expensive, as an overview does at millions of events.
    env = {"THREADLINE_SHARED_READ_MIN_SECONDS": "0", "THREADLINE_SHARED_READ_SECONDS": "120"}
    running = CollectorProcess(store_dir=workdir / "store", env=env, isolated=True).start()
    event = business_event(
        "OPP-SHARED-1", timestamp=(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    )
    assert httpx.post(running.url + "/v1/events", json={"events": [event]}).status_code == 200
    try:
        yield running
    finally:
        running.stop()


def test_figures_shared_from_an_earlier_answer_say_their_age(browser: Browser) -> None:
    browser.open("/?range=all", ready="#kpi-transactions")
    assert browser.text("#kpi-transactions") == "1"
    time.sleep(2.5)  # the collector keeps the answers; the next viewer gets them as they were

    browser.open("/?range=all", ready="#kpi-transactions")

    note = browser.text("#shared-age")
    assert note.startswith(" · some figures from ") or note.startswith("· some figures from "), note
    seconds = int(note.rsplit("from ", 1)[1].split("s", 1)[0])
    assert 2 <= seconds < 120
