"""A real collector process (embedded store) per test module of replay into a collector, and a client on it.

Each module's files use their own keys; a module's tests read back over HTTP what its replays stored.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.collector_process import CollectorProcess


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    process = CollectorProcess(store_dir=tmp_path_factory.mktemp("replay") / "store").start()
    yield process
    process.stop()


@pytest.fixture
def api(collector: CollectorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client
    assert collector.running, f"the collector died:\n{collector.log()[-4000:]}"
