"""A store written by an earlier release migrates in place when the collector starts, and answers
as that release did.

The fixture (tests/fixtures/store_v10) is an embedded store at schema version 10 with a few hundred
events of a seeded traffic, and what the release that wrote it answered; a real collector opens a
copy of it.
"""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import httpx
import orjson

from tests.fixtures.store_v10 import make as fixture
from tests.support.collector_process import CollectorProcess
from threadline.collector.storage import Store, migrations


def unpacked(folder: Path) -> Path:
    with tarfile.open(fixture.ARCHIVE) as archive:
        archive.extractall(folder, filter="data")
    return folder / "store"


def version_of(store_dir: Path) -> int:
    store = Store(f"chdb://{store_dir}").open(migrate=False)
    try:
        return int(store.query("SELECT max(version) FROM schema_migrations").result_rows[0][0])
    finally:
        store.close()


def test_a_version_10_store_migrates_in_place_and_answers_as_before(tmp_path: Path) -> None:
    store_dir = unpacked(tmp_path)
    assert version_of(store_dir) == fixture.VERSION
    expected = orjson.loads(fixture.EXPECTED.read_bytes())
    collector = CollectorProcess(store_dir, env={"THREADLINE_SHARED_READ_SECONDS": "0"}, isolated=True)
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=30) as http:
            as_of = {"as_of": expected["as_of"]}
            queue = http.get("/api/transactions", params={**as_of, "limit": 1000}).json()
            answered = {
                item["correlation_id"]: {
                    "workflow": item["workflow"],
                    "state": item["state"],
                    "events": item["event_count"],
                }
                for item in queue["items"]
            }
            assert answered == expected["transactions"]
            for key, facts in expected["transactions"].items():
                found = http.get(f"/api/transactions/{key}", params=as_of).json()
                assert (found["state"], len(found["events"])) == (facts["state"], facts["events"]), key
    finally:
        collector.stop()
    newest = max(version for version, _ in migrations.migrations())
    assert version_of(store_dir) == newest
    counted = counted_from_events(store_dir)
    assert counted[("salesforce", "crm.opportunity.won", "")] > 0  # the fixture's events are counted
    assert presence_counts(store_dir) == counted
    # made again for reading pages by id (migration 19), then derived again by the state keeper
    assert kept_table_settings(store_dir) == {
        "transaction_states": migrations.POINT_READS,
        "transaction_reconciliations": migrations.POINT_READS,
        "transaction_dimensions": migrations.POINT_READS,
    }


def kept_table_settings(store_dir: Path) -> dict[str, str]:
    """The settings each table the state keeper keeps for reads by id was created with."""
    store = Store(f"chdb://{store_dir}").open(migrate=False)
    try:
        created = {
            table.name: store.query(f"SHOW CREATE TABLE {table.name}").result_rows[0][0]
            for table in migrations.READ_BY_ID
        }
    finally:
        store.close()
    return {table: ddl.rpartition("SETTINGS ")[2].strip() for table, ddl in created.items()}


def presence_counts(store_dir: Path) -> dict[tuple[str, str, str], int]:
    """What migration 17 filled ``attribute_presence`` with, from the events stored before it."""
    store = Store(f"chdb://{store_dir}").open(migrate=False)
    try:
        rows = store.rows(
            "SELECT system, step, attribute, sum(events) AS events FROM attribute_presence "
            "GROUP BY system, step, attribute"
        )
    finally:
        store.close()
    return {(row["system"], row["step"], row["attribute"]): row["events"] for row in rows}


def counted_from_events(store_dir: Path) -> dict[tuple[str, str, str], int]:
    """The same counts, made here from the events one by one."""
    store = Store(f"chdb://{store_dir}").open(migrate=False)
    try:
        rows = store.rows("SELECT system, step, mapKeys(attributes) AS keys, amount, currency FROM events")
    finally:
        store.close()
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        keys = {"", *row["keys"]} | ({"amount"} if row["amount"] is not None else set())
        for key in keys | ({"currency"} if row["currency"] else set()):
            counts[row["system"], row["step"], key] += 1
    return dict(counts)
