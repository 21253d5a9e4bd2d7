"""What a replay stores is what the log says: every row once, in file order, through the real CLI.

``threadline replay`` runs as a command against a real collector process (embedded store), and
the answers are read back over HTTP. The reference for order is what process-mining tools such as
PM4Py do: a case's events stably sorted by timestamp, so events with equal times keep file order.
"""

from __future__ import annotations

import csv
import itertools
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.replay.support import ORDERS_OCEL, transaction
from tests.support.collector_process import CollectorProcess

pytestmark = pytest.mark.slow

STEPS = ("receive", "check", "approve", "reject", "ship", "invoice")


def replay_command(collector: CollectorProcess, path: Path, *options: str, exit_code: int = 0) -> str:
    """``threadline replay`` as a user runs it; its report (stdout). Exit 1: rows were rejected."""
    run = subprocess.run(
        [sys.executable, "-m", "threadline", "replay", str(path), "--endpoint", collector.url, *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == exit_code, run.stdout + run.stderr
    return run.stdout


def process_map(api: httpx.Client, workflow: str) -> dict[str, Any]:
    response = api.get(f"/api/workflows/{workflow}/map")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class Row:
    case: str
    step: str
    minute: int
    amount: str = ""

    @property
    def timestamp(self) -> str:
        return f"2024-03-01T{8 + self.minute // 60:02}:{self.minute % 60:02}:00Z"


def tie_heavy_log(seed: int, cases: int, prefix: str) -> list[Row]:
    """Cases whose consecutive events mostly share a time, a few rows out of time order, some
    rows repeated exactly and some tied rows with amounts; the cases interleaved through the file."""
    rng = random.Random(seed)
    traces = []
    for number in range(cases):
        case, minute, rows = f"{prefix}-{number:04}", 0, []
        for _ in range(rng.randint(3, 7)):
            minute += rng.choice((0, 0, 0, 1))  # three in four share the time of the one before
            rows.append(Row(case, rng.choice(STEPS), minute))
        if number % 7 == 0:
            rows.append(rows[-1])  # the same row twice: two events, as PM4Py counts them
        if number % 5 == 0:  # two amounts at one time: the later row in the file is the latest
            rows += [Row(case, "invoice", minute + 1, "100.0"), Row(case, "invoice", minute + 1, "200.0")]
        if number % 6 == 0:
            rows.insert(1, Row(case, "receive", minute + 2))  # written early, happened last
        traces.append(rows)
    interleaved = []
    while any(traces):
        for rows in traces:
            if rows:
                interleaved.append(rows.pop(0))
    return interleaved


def write_csv(path: Path, rows: list[Row]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["case", "activity", "timestamp", "system", "amount"])
        writer.writerows([row.case, row.step, row.timestamp, "erp", row.amount] for row in rows)
    return path


def traces_in_file_order(rows: list[Row]) -> dict[str, list[Row]]:
    """Each case's rows as process mining reads them: a stable sort by time keeps file order in ties."""
    by_case: dict[str, list[Row]] = {}
    for row in rows:
        by_case.setdefault(row.case, []).append(row)
    return {case: sorted(trace, key=lambda row: row.minute) for case, trace in by_case.items()}


def test_ties_keep_file_order_in_the_map_the_variants_the_timeline_and_the_state(
    collector: CollectorProcess, api: httpx.Client, tmp_path: Path
) -> None:
    rows = tie_heavy_log(seed=15, cases=300, prefix="TIE")
    assert len(rows) > 1500  # two batches of the replay (1000 rows each)
    log = write_csv(tmp_path / "ties.csv", rows)

    report = replay_command(collector, log, "--workflow", "tie-heavy")

    assert f"{len(rows)} imported, 0 duplicates" in report
    traces = traces_in_file_order(rows)
    steps = {case: tuple(row.step for row in trace) for case, trace in traces.items()}
    edges = Counter(pair for trace in steps.values() for pair in itertools.pairwise(trace))
    variants = Counter(steps.values())
    answer = process_map(api, "tie-heavy")
    assert answer["transactions"] == len(traces)
    assert {(e["source"], e["target"]): e["count"] for e in answer["edges"]} == dict(edges)
    assert {tuple(v["steps"]): v["transactions"] for v in answer["variants"]} == dict(variants)
    for case in list(traces)[:40]:
        detail = transaction(api, case)
        assert [(e["step"], e["timestamp"]) for e in detail["events"]] == [
            (row.step, row.timestamp) for row in traces[case]
        ]
        with_amount = [row for row in traces[case] if row.amount]
        if with_amount:  # the latest amount: the last of the latest time, in file order
            assert detail["amount"] == float(with_amount[-1].amount), case


def test_identical_rows_are_distinct_events_and_a_rerun_with_another_mapping_adds_none(
    collector: CollectorProcess, api: httpx.Client, tmp_path: Path
) -> None:
    rows = [
        Row("TWIN-1", "receive", 0),
        Row("TWIN-1", "check", 1),
        Row("TWIN-1", "check", 1),  # the same row again: the check was done twice
        Row("TWIN-2", "receive", 0),
    ]
    log = write_csv(tmp_path / "twins.csv", rows)

    first = replay_command(collector, log, "--workflow", "twins")
    again = replay_command(
        collector, log, "--workflow", "twins-remapped", "--timezone", "Europe/Berlin",
        "--map", "attribute:total=amount", "--map", "attribute:from=system", "--system", "legacy-erp",
    )  # fmt: skip

    assert "4 imported, 0 duplicates" in first
    assert "0 imported, 4 duplicates" in again
    assert transaction(api, "TWIN-1")["event_count"] == 3
    assert transaction(api, "TWIN-2")["event_count"] == 1
    variants = {tuple(v["steps"]): v["transactions"] for v in process_map(api, "twins")["variants"]}
    assert variants == {("receive", "check", "check"): 1, ("receive",): 1}
    assert api.get("/api/workflows/twins-remapped/map").status_code == 404


def test_two_views_of_one_ocel_log_keep_their_own_transactions(
    collector: CollectorProcess, api: httpx.Client
) -> None:
    # the log's event e11 has a bad time: reported, exit 1
    by_orders = replay_command(collector, ORDERS_OCEL, "--object-type", "orders", exit_code=1)
    by_items = replay_command(collector, ORDERS_OCEL, "--object-type", "items", exit_code=1)

    assert "11 imported, 0 duplicates" in by_orders
    assert " 0 duplicates" in by_items
    orders = process_map(api, "orders")
    items = process_map(api, "items")
    assert orders["transactions"] == 2
    assert items["transactions"] == 3
    order = transaction(api, "o-1")
    assert order["workflow"] == "orders"
    assert {e["event_id"] for e in order["events"]} == {"e1", "e3", "e4", "e12", "e6", "e7@o-1", "e8"}
    for item, picked in (("i-1", "e4"), ("i-2", "e12"), ("i-3", "e5")):
        view = transaction(api, item)
        assert (view["correlation_id"], view["workflow"]) == (item, "items")
        assert {e["workflow"] for e in view["events"]} == {"items"}
        assert picked in {e["event_id"] for e in view["events"]}
    assert transaction(api, "items:i-1")["correlation_id"] == "o-1"  # the order's own item finds it
