"""``replay`` into a real collector process, each format, checked through the query API.

One collector (embedded store) serves the whole module: each fixture file uses its own keys.
Each format is replayed once by a module fixture; the tests read the result back over HTTP, and
one test per format replays the file a second time to see nothing imported twice.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.replay.support import (
    CSV_BAD_TIME,
    ONBOARDING_XES,
    ORDERS_CSV,
    ORDERS_OCEL,
    orders_mapping,
    transaction,
)
from tests.support.collector_process import CollectorProcess
from threadline.replay import ReplayReport, RowProblem, format_report, replay

ORDERS_MAPPING_FILE = ORDERS_CSV.with_suffix(".mapping")

pytestmark = pytest.mark.slow

CSV_OPTIONS: dict[str, Any] = {
    "mapping": orders_mapping(),
    "workflow": "quote-to-cash",
    "timezone": "Europe/Berlin",
}


@pytest.fixture(scope="module")
def csv_report(collector: CollectorProcess) -> ReplayReport:
    return replay(ORDERS_CSV, collector.url, batch_size=4, **CSV_OPTIONS)


@pytest.fixture(scope="module")
def xes_report(collector: CollectorProcess) -> ReplayReport:
    return replay(ONBOARDING_XES, collector.url)


@pytest.fixture(scope="module")
def ocel_report(collector: CollectorProcess) -> ReplayReport:
    return replay(ORDERS_OCEL, collector.url)


def steps(body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(e["step"], e["system"], e["status"], e["timestamp"]) for e in body["events"]]


def test_csv_good_rows_are_stored_and_the_bad_one_reported_by_line(
    csv_report: ReplayReport, api: httpx.Client
) -> None:
    assert (csv_report.imported, csv_report.duplicates, csv_report.batches) == (6, 0, 2)
    assert csv_report.rejected == [RowProblem(6, "timestamp", CSV_BAD_TIME)]
    assert "line 6: timestamp: '31/02/2024 10:00'" in format_report(csv_report)

    order = transaction(api, "CSV-1001")
    assert order["event_count"] == 3
    assert order["aliases"] == {"erp.sales_order": "SO-88812"}
    assert steps(order) == [  # local Berlin times (CEST) stored in UTC
        ("crm.opportunity.won", "salesforce", "ok", "2024-05-01T07:00:00Z"),
        ("erp.customer.validated", "netsuite", "ok", "2024-05-01T07:05:00Z"),
        ("erp.order.created", "netsuite", "ok", "2024-05-01T07:20:00Z"),
    ]
    won = order["events"][0]
    assert (won["amount"], won["currency"], won["attributes"]) == (1250.0, "EUR", {"region": "emea"})
    assert order["events"][2]["attributes"]["note"] == "Created after a retry:\nNetSuite answered 503 first"
    assert transaction(api, "SO-88812")["correlation_id"] == "CSV-1001"

    second = transaction(api, "CSV-1002")  # its line-6 row was rejected, the other two are there
    assert steps(second) == [
        ("cpq.quote.approved", "cpq", "pending", "2024-05-02T08:30:00Z"),
        ("erp.order.created", "netsuite", "error", "2024-05-02T09:00:00Z"),
    ]


def test_xes_both_traces_are_stored_without_the_bad_event(
    xes_report: ReplayReport, api: httpx.Client
) -> None:
    assert (xes_report.imported, xes_report.rejected_rows) == (4, 1)
    assert [(p.line, p.field) for p in xes_report.rejected] == [(38, "timestamp")]

    acme = transaction(api, "XES-ACME-1")
    assert acme["workflow"] == "customer-onboarding"
    assert steps(acme) == [
        ("crm.account.created", "salesforce", "ok", "2024-03-04T08:00:00Z"),
        ("erp.customer.created", "netsuite", "pending", "2024-03-04T08:30:00Z"),
    ]
    assert acme["events"][0]["attributes"] == {"case:AMOUNT_REQ": "20000", "lifecycle:transition": "complete"}
    globex = transaction(api, "XES-GLOBEX-2")
    assert globex["events"][0]["event_id"] == "XES-GLOBEX-2-created"
    assert steps(globex)[1] == ("erp.customer.created", "netsuite", "error", "2024-03-05T10:20:00Z")


def test_ocel_orders_carry_their_items_and_invoice_as_aliases(
    ocel_report: ReplayReport, api: httpx.Client
) -> None:
    assert (ocel_report.imported, ocel_report.rejected_rows, ocel_report.skipped) == (11, 1, 2)
    [problem] = ocel_report.rejected
    assert (problem.line, problem.ref, problem.field) == (113, "event #11 (id e11)", "timestamp")

    order = transaction(api, "o-1")
    assert order["workflow"] == "orders"
    assert order["aliases"] == {"invoices": "invoices:inv-1", "items": "items:i-1", "items#2": "items:i-2"}
    assert [(e["step"], e["event_id"]) for e in order["events"]] == [
        ("place order", "e1"),
        ("confirm order", "e3"),
        ("pick item", "e4"),
        ("pick item", "e12"),
        ("create invoice", "e6"),
        ("create invoice", "e7@o-1"),
        ("pay invoice", "e8"),
    ]
    for key in ("items:i-2", "invoices:inv-1"):  # an order's own objects find it
        assert transaction(api, key)["correlation_id"] == "o-1"
    for key in ("c-1", "inv-2", "customers:c-1", "invoices:inv-2"):  # shared by both orders: no one's key
        assert api.get(f"/api/transactions/{key}").status_code == 404

    other = transaction(api, "o-2")
    assert [e["event_id"] for e in other["events"]] == ["e2", "e13", "e5", "e7@o-2"]  # not e11 (bad time)
    assert other["events"][0]["attributes"] == {"channel": "phone", "object.customers": "c-1"}


@pytest.mark.parametrize("which", ["csv", "xes", "ocel"])
def test_replaying_a_file_twice_imports_nothing_twice(
    which: str, request: pytest.FixtureRequest, collector: CollectorProcess, api: httpx.Client
) -> None:
    first: ReplayReport = request.getfixturevalue(f"{which}_report")
    path, options = {
        "csv": (ORDERS_CSV, CSV_OPTIONS),
        "xes": (ONBOARDING_XES, {}),
        "ocel": (ORDERS_OCEL, {}),
    }[which]
    key = {"csv": "CSV-1001", "xes": "XES-ACME-1", "ocel": "o-1"}[which]
    count = transaction(api, key)["event_count"]

    again = replay(path, collector.url, **options)

    assert (again.imported, again.duplicates) == (0, first.imported)
    assert again.rejected == first.rejected
    assert transaction(api, key)["event_count"] == count


def test_the_command_line_reports_bad_rows_by_line_and_exits_non_zero(collector: CollectorProcess) -> None:
    import subprocess
    import sys

    mapping = [
        arg for line in ORDERS_MAPPING_FILE.read_text().splitlines() if line for arg in ("--map", line)
    ]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline",
            "replay",
            str(ORDERS_CSV),
            "--endpoint",
            collector.url,
            "--workflow",
            "returns",
            "--timezone",
            "Europe/Berlin",
            *mapping,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "line 6: timestamp" in run.stdout
