"""``threadline backup`` / ``threadline restore``: a restored store answers every API call as the
store it was backed up from.

Real processes throughout: a collector fills an embedded store over HTTP (events, spans, an alert,
an operator's action), the commands run as the operator runs them, and a collector on each store
answers; the embedded engine serves one process per store, so each side is its own process.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clickhouse_server import BACKUP_DISK, ClickHouseServer
from tests.support.collector_process import ROOT, CollectorProcess
from tests.support.ingest import new_span_id, new_trace_id, otlp_json_request, otlp_json_span
from tests.support.polling import eventually
from tests.support.traffic import Traffic
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.storage import Store
from threadline.collector.workflows import load

pytestmark = pytest.mark.slow
AS_OF = dt.datetime.now(dt.UTC).replace(microsecond=0)  # one moment asked of both stores
# Answers are compared as made, never shared from before (THREADLINE_SHARED_READ_SECONDS).
QUIET = {"THREADLINE_SHARED_READ_SECONDS": "0", "THREADLINE_ALERT_INTERVAL": "0"}


def threadline(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def fill(collector: CollectorProcess) -> list[str]:
    """Events of a seeded traffic, a trace, an alert and an operator's action; the keys sent."""
    traffic = Traffic(load(EXAMPLE_WORKFLOWS), seed=27)
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        eventually(lambda: http.get("/api/alerts/rules").json()["last_evaluation"], what="a first evaluation")
        for batch in traffic.batches(transactions=60, size=100):  # some stamped hours ahead: the skew is 1d
            sent = http.post("/v1/events", json={"events": batch})
            assert sent.status_code == 200, sent.text
        trace_id = new_trace_id()
        span = otlp_json_span(trace_id, new_span_id(), "POST /orders", attributes={"http.status_code": 201})
        assert http.post("/v1/traces", json=otlp_json_request("erp", span)).status_code == 200
        eventually(lambda: http.get("/api/alerts").json()["items"], timeout=60, what="an alert fired")
        stuck = http.get("/api/transactions", params={"state": "stuck", "limit": 1}).json()["items"]
        if stuck:
            key = stuck[0]["correlation_id"]
            resolved = http.post(f"/api/transactions/{key}/resolve", json={"comment": "fixed by hand"})
            assert resolved.status_code == 201, resolved.text
    return [*sorted({event["correlation_id"] for event in traffic.sent}), f"trace:{trace_id}"]


def kept(http: httpx.Client) -> bool:
    """The state keeper's first pass is done: the reconciliation and dimension facts are its."""
    return 'threadline_state_snapshot_covered_until_seconds{tenant=""}' in http.get("/metrics").text


def answers(collector: CollectorProcess, keys: list[str]) -> dict[str, Any]:
    """Every read of the API, as of one moment, once the keeper has derived what it keeps."""
    moment = {"as_of": AS_OF.isoformat()}
    found: dict[str, Any] = {}
    with httpx.Client(base_url=collector.url, timeout=60) as http:
        eventually(lambda: kept(http), timeout=60, what="the state keeper's first pass")

        def get(path: str, **params: Any) -> Any:
            response = http.get(path, params=params)
            return response.status_code, response.json()

        found["overview"] = get("/api/overview", **moment)
        found["queue"] = get("/api/transactions", limit=1000, **moment)
        found["open queue"] = get("/api/transactions", state="stuck,in_progress", limit=1000, **moment)
        found["workflows"] = get("/api/workflows")
        for workflow in found["workflows"][1]:
            found[f"map {workflow['name']}"] = get(f"/api/workflows/{workflow['name']}/map")
        found["systems"] = get("/api/systems")
        found["exceptions"] = get("/api/exceptions", **moment)
        found["alerts"] = get("/api/alerts")
        for alert in found["alerts"][1]["items"]:
            found[f"alert {alert['id']}"] = get(f"/api/alerts/{alert['id']}")
        found["audit"] = get("/api/audit")
        for key in keys:
            if key.startswith("trace:"):
                found[key] = get(f"/api/traces/{key.removeprefix('trace:')}")
            else:
                found[f"transaction {key}"] = get(f"/api/transactions/{key}", **moment)
    return found


def test_a_restored_store_answers_every_call_as_the_store_backed_up(tmp_path: Path) -> None:
    original = CollectorProcess(
        tmp_path / "original" / "store",
        env={"THREADLINE_ALERT_INTERVAL": "0.5", "THREADLINE_MAX_FUTURE_SKEW": "1d"},
        isolated=True,
    ).start()
    try:
        keys = fill(original)
        in_use = threadline("backup", str(tmp_path / "backup"), "--store", original.dsn)
        assert (in_use.returncode, in_use.stderr.count("\n")) == (1, 1), in_use.stderr
        assert "in use by another process" in in_use.stderr
    finally:
        original.stop()  # the embedded engine serves one process: the backup needs the store free

    backed_up = threadline("backup", str(tmp_path / "backup"), "--store", original.dsn)
    assert backed_up.returncode == 0, backed_up.stderr
    restored_dsn = f"chdb://{tmp_path / 'restored' / 'store'}"
    restored = threadline("restore", str(tmp_path / "backup"), "--store", restored_dsn)
    assert restored.returncode == 0, restored.stderr
    store = Store(restored_dsn).open()
    try:  # the state snapshot is derived again from what was restored, never taken on trust
        for table in ("transaction_states", "state_marks"):
            assert store.query(f"SELECT count() FROM {table}").result_rows[0][0] == 0, table
        assert store.query("SELECT count() FROM events").result_rows[0][0] > 300
    finally:
        store.close()

    collectors = [
        CollectorProcess(tmp_path / side / "store", env=QUIET, isolated=True)
        for side in ("original", "restored")
    ]
    try:
        before, after = (answers(collector.start(), keys) for collector in collectors)
        with httpx.Client(base_url=collectors[1].url, timeout=30) as http:  # and it takes new events
            new = {
                "correlation_id": "AFTER-RESTORE",
                "workflow": "quote-to-cash",
                "step": "crm.opportunity.won",
                "system": "salesforce",
                "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            }
            stored = http.post("/v1/events", json={"events": [new]})
            assert stored.status_code == 200, stored.text
            queue = http.get("/api/transactions", params={"limit": 1000}).json()  # the views keep the rollups
            assert queue["total"] == before["queue"][1]["total"] + 1
            assert "AFTER-RESTORE" in {item["correlation_id"] for item in queue["items"]}
    finally:
        for collector in collectors:
            collector.stop()
    assert before["alerts"][1]["items"], "the traffic fired an alert"
    assert before["queue"][1]["total"] > 50
    assert sorted(before) == sorted(after)
    differing = {name: differences(answer, after[name]) for name, answer in before.items()}
    assert not {name: found for name, found in differing.items() if found}


def differences(expected: Any, got: Any, path: str = "") -> list[str]:
    """Where two answers differ, as paths into them; sums of floats up to their order (the restored
    store's state snapshot is derived again, and until then its reads add rows in another order)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        keys = sorted(set(expected) | set(got))
        return [d for k in keys for d in differences(expected.get(k), got.get(k), f"{path}.{k}")]
    if isinstance(expected, list | tuple) and isinstance(got, list | tuple) and len(expected) == len(got):
        return [
            d
            for i, (e, g) in enumerate(zip(expected, got, strict=True))
            for d in differences(e, g, f"{path}[{i}]")
        ]
    if isinstance(expected, float) and isinstance(got, float) and math.isclose(expected, got, rel_tol=1e-12):
        return []
    return [] if expected == got else [f"{path}: {expected!r} != {got!r}"]


def test_backup_and_restore_refuse_in_one_line_with_the_usage_status(tmp_path: Path) -> None:
    for arguments in (
        ("restore", str(tmp_path / "no-such-backup"), "--store", f"chdb://{tmp_path / 'store'}"),
        ("backup", str(tmp_path / "backup"), "--store", "postgres://db.example.com/threadline"),
        ("backup", str(tmp_path), "--store", f"chdb://{tmp_path / 'store'}"),  # exists already
        ("backup", str(tmp_path / "backup"), "--store", f"chdb://{tmp_path / 'empty'}"),  # no store there
    ):
        refused = threadline(*arguments)
        assert refused.returncode == 2, refused
        assert refused.stderr.startswith(f"threadline {arguments[0]}: ") and refused.stderr.count("\n") == 1


def test_a_servers_store_is_backed_up_to_its_backup_disk_and_restored_into_another_database(
    clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    original = CollectorProcess(
        tmp_path / "original" / "store",
        store=clickhouse_server.new_database(),
        env={**QUIET, "THREADLINE_MAX_FUTURE_SKEW": "1d"},
        isolated=True,
    ).start()
    traffic = Traffic(load(EXAMPLE_WORKFLOWS), seed=28)
    with httpx.Client(base_url=original.url, timeout=30) as http:
        for batch in traffic.batches(transactions=20, size=100):
            assert http.post("/v1/events", json={"events": batch}).status_code == 200
    keys = sorted({event["correlation_id"] for event in traffic.sent})
    # A server's backup is taken while collectors run.
    backed_up = threadline("backup", f"disk:{BACKUP_DISK}:{tmp_path.name}.zip", "--store", original.dsn)
    assert backed_up.returncode == 0, backed_up.stderr
    restored_dsn = clickhouse_server.new_database()
    restored = threadline("restore", f"disk:{BACKUP_DISK}:{tmp_path.name}.zip", "--store", restored_dsn)
    assert restored.returncode == 0, restored.stderr
    copy = CollectorProcess(tmp_path / "restored" / "store", store=restored_dsn, env=QUIET, isolated=True)
    try:
        before, after = answers(original, keys), answers(copy.start(), keys)
    finally:
        original.stop()
        copy.stop()
    differing = {name: differences(answer, after[name]) for name, answer in before.items()}
    assert not {name: found for name, found in differing.items() if found}
