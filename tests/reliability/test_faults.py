"""Nothing lost, nothing doubled: SDK clients against a collector that is killed, down, or flooded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.collector_process import ROOT, CollectorProcess
from tests.support.otlp_receiver import free_port

pytestmark = pytest.mark.slow

CLIENT_ENV = {
    "THREADLINE_MAX_BACKOFF": "1",
    "THREADLINE_EXPORT_TIMEOUT": "2",
    "THREADLINE_SCHEDULE_DELAY": "0.2",
}


def start_client(
    collector: CollectorProcess,
    system: str,
    count: int,
    rate: float,
    spool: Path,
    flush_timeout_s: float = 180,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.sdk_client",
            collector.url,
            system,
            str(count),
            str(rate),
            str(spool),
            str(flush_timeout_s),
        ],
        cwd=ROOT,
        env={**os.environ, **CLIENT_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored_events_by_system(collector: CollectorProcess) -> dict[str, int]:
    report = httpx.get(collector.url + "/api/systems", timeout=60).json()
    return {system["system"]: system["events"] for system in report["systems"]}


def event_counts(collector: CollectorProcess) -> Counter[int]:
    """How many transactions have each number of events, over the whole queue."""
    counts: Counter[int] = Counter()
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(collector.url + "/api/transactions", params=params, timeout=60).json()
        counts.update(item["event_count"] for item in page["items"])
        if not (cursor := page["next_cursor"]):
            return counts


def duplicates_dropped(collector: CollectorProcess) -> float:
    for line in httpx.get(collector.url + "/metrics", timeout=30).text.splitlines():
        if line.startswith("threadline_events_duplicates_dropped_total") and 'endpoint="traces"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def finish(clients: list[subprocess.Popen[str]], timeout_s: float = 240) -> None:
    for client in clients:
        out, err = client.communicate(timeout=timeout_s)
        assert client.returncode == 0, f"client exited {client.returncode}: {out}\n{err[-2000:]}"


def test_a_collector_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    port = free_port()
    collector = CollectorProcess(store_dir=tmp_path / "store", port=port, isolated=True).start()
    systems = ["netsuite", "stripe", "zendesk"]
    clients = [start_client(collector, system, 1500, 500, tmp_path / f"spool-{system}") for system in systems]
    try:
        time.sleep(1.5)  # the clients are mid-stream
        collector.kill()  # SIGKILL: no goodbye, whatever was in flight is cut off
        time.sleep(2)
        collector = CollectorProcess(store_dir=tmp_path / "store", port=port, isolated=True).start()
        finish(clients)
        assert stored_events_by_system(collector) == dict.fromkeys(systems, 1500)
        # The engine-kept rollups, which the queue reads, hold them all too: each transaction its 3.
        assert event_counts(collector) == Counter({3: 1500})
    finally:
        collector.stop()


def test_a_one_minute_outage_loses_and_doubles_nothing(tmp_path: Path) -> None:
    port = free_port()
    collector = CollectorProcess(store_dir=tmp_path / "store", port=port, isolated=True).start()
    clients = [
        start_client(collector, system, 1200, 15, tmp_path / f"spool-{system}") for system in ("cpq", "crm")
    ]
    try:
        time.sleep(5)
        collector.stop()
        time.sleep(60)  # the clients keep sending into their spools for a minute
        collector = CollectorProcess(store_dir=tmp_path / "store", port=port, isolated=True).start()
        finish(clients, timeout_s=300)
        assert stored_events_by_system(collector) == {"cpq": 1200, "crm": 1200}
    finally:
        collector.stop()


def test_events_of_a_process_that_exited_during_an_outage_are_sent_by_the_next_one(tmp_path: Path) -> None:
    port = free_port()
    spool = tmp_path / "spool"
    down = CollectorProcess(store_dir=tmp_path / "store", port=port, isolated=True)  # not started: down
    first = start_client(down, "salesforce", 500, 2000, spool, flush_timeout_s=0)
    finish([first])
    assert any(spool.glob("*.otlp")), "the exiting process left its events in the spool"
    collector = down.start()
    try:
        # The next integration process on the same spool sends its own events and the spooled ones.
        finish([start_client(collector, "salesforce-b", 10, 100, spool)])
        stored = stored_events_by_system(collector)
        assert stored == {"salesforce": 500, "salesforce-b": 10}
        assert not any(spool.glob("*.otlp"))
    finally:
        collector.stop()


def test_a_flood_is_refused_with_retry_after_and_memory_stays_bounded(tmp_path: Path) -> None:
    collector = CollectorProcess(
        store_dir=tmp_path / "store", isolated=True, env={"THREADLINE_MAX_PENDING_EVENTS": "3000"}
    ).start()
    body = {
        "events": [
            {
                "correlation_id": f"F-{n}",
                "workflow": "w",
                "step": "s",
                "system": "flood",
                "timestamp": "2026-03-02T09:00:00Z",
                "attributes": {"blob": "x" * 2000},
            }
            for n in range(1000)
        ]
    }
    statuses: list[int] = []
    accepted = 0

    def send(round_: int) -> tuple[int, int, str | None]:
        events = [{**event, "event_id": f"{round_}-{n}"} for n, event in enumerate(body["events"])]
        response = httpx.post(collector.url + "/v1/events", json={"events": events}, timeout=120)
        count = response.json().get("accepted", 0) if response.status_code == 200 else 0
        return response.status_code, count, response.headers.get("retry-after")

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            for status, count, retry_after in pool.map(send, range(96)):
                statuses.append(status)
                accepted += count
                if status == 503:
                    assert retry_after is not None
        assert 503 in statuses, "the flood never met backpressure"
        assert set(statuses) <= {200, 503}
        assert stored_events_by_system(collector).get("flood", 0) == accepted
        assert collector.peak_memory_bytes() < 1024 * 1024 * 1024
    finally:
        collector.stop()
