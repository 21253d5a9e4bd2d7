"""Real collector processes for the ingest tests, on each store Threadline supports.

Every test that asks for ``live_collector`` (or ``http``) runs once per store kind: the embedded
store (always), and a real ClickHouse server when its binary is installed (otherwise that variant
is skipped, and ``-ra`` prints why). One collector per store kind is shared by the whole session;
tests keep apart by using their own correlation ids. Tests that restart or reconfigure a
collector get their own from ``new_collector``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.clickhouse_server import MIN_VERSION, ClickHouseServer, why_not_available
from tests.support.collector_process import CollectorProcess
from tests.support.stores import CLICKHOUSE_SERVER, EMBEDDED, Stores


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """A ClickHouse server on free ports in a temporary folder; skips when none is installed."""
    reason = why_not_available()
    if reason:
        pytest.skip(reason)
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse")).start()
    try:
        version = server.version()
        if version < MIN_VERSION:
            pytest.skip(
                f"ClickHouse {version[0]}.{version[1]} is older than {MIN_VERSION[0]}.{MIN_VERSION[1]}"
            )
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=[EMBEDDED, CLICKHOUSE_SERVER])
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stores:
    server = request.getfixturevalue("clickhouse_server") if request.param == CLICKHOUSE_SERVER else None
    return Stores(request.param, tmp_path_factory, server)


@pytest.fixture(scope="session")
def live_collector(stores: Stores) -> Iterator[CollectorProcess]:
    """One running collector per store kind, with default settings, shared by the session."""
    collector = stores.collector().start()
    yield collector
    collector.stop()


@pytest.fixture
def http(live_collector: CollectorProcess) -> Iterator[httpx.Client]:
    """A client on the shared collector; fails the test if the collector died during it."""
    with httpx.Client(base_url=live_collector.url, timeout=30) as client:
        yield client
    assert live_collector.running, f"the collector died:\n{live_collector.log()[-4000:]}"


@pytest.fixture
def new_collector(stores: Stores) -> Iterator[Callable[..., CollectorProcess]]:
    """Makes collectors of the test's own (``stores.collector`` arguments); stops them all afterwards."""
    made: list[CollectorProcess] = []

    def make(env: dict[str, str] | None = None, store: str | None = None) -> CollectorProcess:
        made.append(stores.collector(env, store))
        return made[-1]

    yield make
    for collector in made:
        collector.stop()
