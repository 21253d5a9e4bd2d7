"""While the store is unreachable: /readyz answers 503, ingest answers 503 and stores nothing.

Only a ClickHouse server can be taken away from a running collector (the embedded store lives in
its process), so these tests need one; without it they are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.clickhouse_server import ClickHouseServer, why_not_available
from tests.support.collector_process import CollectorProcess
from tests.support.ingest import assert_error, business_event, event_count, post_events, unique_key

pytestmark = pytest.mark.slow


@dataclass
class Outage:
    server: ClickHouseServer
    http: httpx.Client


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    """A collector whose ClickHouse server has just been stopped."""
    reason = why_not_available()
    if reason:
        pytest.skip(reason)
    server = ClickHouseServer(tmp_path / "clickhouse").start()
    collector = CollectorProcess(
        store_dir=tmp_path / "collector" / "store", store=server.new_database(), isolated=True
    )
    try:
        collector.start()
        server.stop()
        with httpx.Client(base_url=collector.url, timeout=30) as http:
            yield Outage(server, http)
    finally:
        collector.stop()
        server.stop()


def test_readyz_answers_503_while_the_store_is_unreachable_and_200_once_it_is_back(outage: Outage) -> None:
    down = outage.http.get("/readyz")

    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.headers["retry-after"]
    outage.server.start()
    assert outage.http.get("/readyz").status_code == 200
    assert outage.http.get("/healthz").status_code == 200


def test_an_event_sent_while_the_store_is_unreachable_is_refused_503_and_taken_once_it_is_back(
    outage: Outage,
) -> None:
    key = unique_key("OPP")
    event = business_event(key, event_id=f"{key}-won")

    refused = post_events(outage.http, event)

    assert_error(refused, 503, "store_unavailable")
    assert refused.headers["retry-after"]
    outage.server.start()
    assert post_events(outage.http, event).json() == {"accepted": 1, "duplicates": 0, "warnings": []}
    assert event_count(outage.http, key) == 1
