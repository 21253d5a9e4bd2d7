"""Real processes for the dashboard's browser tests: a collector, the dashboard, headless Chromium.

Per test module: one collector (its own embedded store) with the scenario's events, one dashboard
process reading that collector's API, and one browser. Nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard import scenario
from tests.dashboard.browser import Browser, DashboardProcess, available
from tests.support.collector_process import CollectorProcess

MISSING = available()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if MISSING:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    return tmp_path_factory.mktemp("dashboard")


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    running = CollectorProcess(store_dir=workdir / "store", isolated=True).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def seeded(collector: CollectorProcess) -> scenario.Scenario:
    """The scenario's events, stored (the collector acknowledges only what it has stored)."""
    events = scenario.build()
    events.send(collector.url)
    return events


@pytest.fixture(scope="module")
def dashboard(collector: CollectorProcess, workdir: Path) -> Iterator[DashboardProcess]:
    running = DashboardProcess(collector.url, workdir).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(dashboard: DashboardProcess) -> Iterator[Browser]:
    window = Browser(dashboard.url)
    try:
        yield window
    finally:
        window.quit()


@pytest.fixture(scope="module")
def api(collector: CollectorProcess) -> Iterator[httpx.Client]:
    """The query API, asked directly: what the dashboard must show."""
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client
