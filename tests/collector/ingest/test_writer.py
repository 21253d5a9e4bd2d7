"""The store writer: requests share inserts, and a write waits a little for requests on their way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.ingest import business_event
from threadline.collector.ingest.writer import Writer
from threadline.collector.metrics import Metrics
from threadline.collector.schema import BusinessEvent, parse_batch
from threadline.collector.storage import Store

GATHER_S = 5.0  # long, so that what the tests do in between never outlasts it


@pytest.fixture()
def writer(tmp_path: Path) -> Iterator[Writer]:
    store = Store(f"chdb://{tmp_path / 'store'}").open()
    started = Writer(store, Metrics(), gather_s=GATHER_S)
    started.start()
    yield started
    started.stop()
    store.close()


def events(prefix: str, count: int) -> list[BusinessEvent]:
    batch = [business_event(f"{prefix}-{n}", event_id=f"{prefix}-e{n}") for n in range(count)]
    return parse_batch(orjson.dumps({"events": batch}))


def writes(writer: Writer) -> int:
    """How many writes the writer made (each stores everything its requests carried)."""
    return int(writer.metrics.registry.get_sample_value("threadline_store_insert_seconds_count") or 0)


def test_a_write_waits_for_a_request_still_being_checked_and_both_share_it(writer: Writer) -> None:
    async def scenario() -> None:
        with writer.arriving() as arrival:
            first = asyncio.ensure_future(writer.submit("", "json", events("A", 3)))
            await asyncio.sleep(0.5)  # still checking its events: the write waits
            assert not first.done()
            second = await writer.submit("", "json", events("B", 2), arrival=arrival)
        assert (await first).accepted == 3
        assert second.accepted == 2

    asyncio.run(scenario())
    assert writes(writer) == 1


def test_a_write_does_not_wait_long_for_a_request_that_never_comes(writer: Writer) -> None:
    async def scenario() -> None:
        with writer.arriving():  # announced, then refused before submitting (a 400, a 429)
            result = await asyncio.wait_for(writer.submit("", "json", events("A", 1)), GATHER_S * 4)
            assert result.accepted == 1

    asyncio.run(scenario())
    assert writes(writer) == 1
