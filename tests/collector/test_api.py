"""The query API over a small, known dataset: the queue, the overview, maps, systems, workflows."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from threadline.collector.config import EXAMPLE_WORKFLOWS

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
AS_OF = (T0 + dt.timedelta(hours=6)).isoformat()
Q2C = [
    ("crm.opportunity.won", "salesforce"),
    ("erp.customer.validated", "netsuite"),
    ("cpq.quote.approved", "cpq"),
    ("erp.order.created", "netsuite"),
    ("billing.subscription.activated", "stripe"),
    ("support.entitlement.created", "zendesk"),
]


def event(key: str, step: str, system: str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": fields.pop("workflow", "quote-to-cash"),
        "step": step,
        "system": system,
        "timestamp": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        **fields,
    }


def transaction(key: str, steps: int, start: float, gap: float = 10, **fields: Any) -> list[dict[str, Any]]:
    return [
        event(key, step, system, start + n * gap, **fields) for n, (step, system) in enumerate(Q2C[:steps])
    ]


# As of T0+6h: 3 completed (one late: breached), 2 stuck (one with a USD amount at risk),
# 1 failed, 2 in progress (recent), 1 with a governance violation (also stuck).
DATASET = [
    *transaction("DONE-1", 6, 0, amount=1000, currency="USD"),
    *transaction("DONE-2", 6, 10, gap=5, duration_ms=120.0),
    *transaction("LATE-1", 5, 0),
    event("LATE-1", "support.entitlement.created", "zendesk", 290),
    *transaction("STUCK-1", 4, 0, amount=5000, currency="USD"),
    *transaction("STUCK-2", 2, 30),
    *transaction("FAIL-1", 4, 0),
    event(
        "FAIL-1",
        "erp.order.rejected",
        "netsuite",
        45,
        status="error",
        error={"kind": "business", "message": "credit hold"},
    ),
    *transaction("OPEN-1", 3, 330),
    *transaction("OPEN-2", 2, 340, amount=99, currency="EUR"),
    *transaction("RULE-1", 3, 0),
    event("RULE-1", "billing.subscription.activated", "stripe", 40),
]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    folder = tmp_path_factory.mktemp("api")
    workflows = folder / "workflows.yaml"
    shutil.copy(EXAMPLE_WORKFLOWS, workflows)
    running = CollectorProcess(store_dir=folder / "store", workflows=workflows).start()
    assert httpx.post(running.url + "/v1/events", json={"events": DATASET}).status_code == 200
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(collector: CollectorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client


def keys(page: dict[str, Any]) -> list[str]:
    return [item["correlation_id"] for item in page["items"]]


def listing(api: httpx.Client, **params: Any) -> dict[str, Any]:
    response = api.get("/api/transactions", params={"as_of": AS_OF, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_queue_lists_newest_activity_first(api: httpx.Client) -> None:
    page = listing(api)
    assert page["total"] == 9
    activity = [item["last_activity"] for item in page["items"]]
    assert activity == sorted(activity, reverse=True)
    assert set(keys(page)[:2]) == {"OPEN-1", "OPEN-2"}  # both last active at +350m


def test_the_queue_filters_by_state(api: httpx.Client) -> None:
    assert sorted(keys(listing(api, state="stuck"))) == ["RULE-1", "STUCK-1", "STUCK-2"]
    assert sorted(keys(listing(api, state="failed"))) == ["FAIL-1"]
    assert sorted(keys(listing(api, state=["completed", "in_progress"]))) == [
        "DONE-1",
        "DONE-2",
        "LATE-1",
        "OPEN-1",
        "OPEN-2",
    ]
    assert sorted(keys(listing(api, state="stuck,failed"))) == ["FAIL-1", "RULE-1", "STUCK-1", "STUCK-2"]


def test_the_queue_filters_by_breach_violation_system_and_attention(api: httpx.Client) -> None:
    assert "LATE-1" in keys(listing(api, breached="true"))
    assert "DONE-1" in keys(listing(api, breached="false"))
    assert keys(listing(api, violations="true")) == ["RULE-1"]
    waiting_on_stripe = keys(listing(api, system="stripe", state="stuck"))
    assert sorted(waiting_on_stripe) == ["RULE-1", "STUCK-1"]  # STUCK-2 waits on netsuite/cpq
    attention = set(keys(listing(api, attention="true")))
    assert attention >= {"STUCK-1", "STUCK-2", "FAIL-1", "LATE-1", "RULE-1"}
    # In progress and recent: nothing to do. (OPEN-1 is in it: the example's `reconcile:` expects an
    # amount at crm.opportunity.won, and it sent none.)
    assert "OPEN-2" not in attention
    assert "OPEN-1" in keys(listing(api, issue="mismatch"))


def test_the_queue_pages_with_a_cursor_without_gaps_or_repeats(api: httpx.Client) -> None:
    seen: list[str] = []
    page = listing(api, limit=4)
    while True:
        seen += keys(page)
        if page["next_cursor"] is None:
            break
        page = listing(api, limit=4, cursor=page["next_cursor"])
    assert seen == keys(listing(api, limit=100))


def test_a_bad_cursor_or_state_is_a_400_naming_it(api: httpx.Client) -> None:
    for params, field in (
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"state": "asleep"}, "state"),
        ({"limit": 0}, "limit"),
    ):
        response = api.get("/api/transactions", params=params)
        assert response.status_code == 400, params
        assert response.json()["problems"][0]["field"] == field


# Not cursors this API handed out: not base64 JSON, the wrong values, a moment the store cannot hold.
FORGED_CURSORS = (
    "not-a-cursor",
    "WzEsMl0",  # [1,2]
    "WyI5OTk5LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwieCJd",  # ["9999-01-01T00:00:00+00:00","x"]
)


@pytest.mark.parametrize("path", ["/api/transactions", "/api/audit", "/api/alerts"])
def test_every_paged_list_refuses_a_cursor_it_did_not_hand_out_naming_it(
    api: httpx.Client, path: str
) -> None:
    for cursor in FORGED_CURSORS:
        response = api.get(path, params={"cursor": cursor})
        assert response.status_code == 400, (path, cursor, response.text)
        body = response.json()
        assert body["problems"] == [{"field": "cursor", "reason": "is not a cursor this API handed out"}]
        assert body["message"] == "cursor is not a cursor this API handed out"


def test_overview_counts_match_the_queue(api: httpx.Client) -> None:
    overview = api.get("/api/overview", params={"as_of": AS_OF}).json()
    totals = overview["totals"]
    for state in ("completed", "failed", "stuck", "in_progress"):
        assert totals[state] == listing(api, state=state)["total"], state
    assert totals["transactions"] == listing(api)["total"] == 9
    assert totals["breached"] == listing(api, breached="true")["total"]
    assert totals["with_violations"] == 1
    assert totals["completion_rate"] == pytest.approx(3 / 9)


def test_overview_figures(api: httpx.Client) -> None:
    overview = api.get("/api/overview", params={"as_of": AS_OF}).json()
    totals = overview["totals"]
    assert [w["workflow"] for w in overview["workflows"]] == ["quote-to-cash"]
    # value at risk: stuck or breached transactions that carry an amount
    assert totals["value_at_risk"] == [{"currency": "USD", "amount": 5000.0, "transactions": 1}]
    # cycle times of the three completed: 50m, 25m, 290m
    assert totals["cycle_time_p50_seconds"] == pytest.approx(3000, rel=0.05)
    assert totals["sla_attainment"] == pytest.approx(1 - totals["breached"] / 9)
    # STUCK-2 and OPEN-2 wait on the quote; STUCK-1 alone waits on billing
    assert overview["bottlenecks"][0] == {
        "step": "cpq.quote.approved",
        "system": "cpq",
        "waiting": 2,
        "stuck": 1,
    }
    assert sum(point["started"] for point in overview["trend"]) == 9


def test_a_range_with_a_start_gives_the_figures_and_trend_of_the_same_transactions(api: httpx.Client) -> None:
    """The dashboard's ranges have a start: its trend then comes in the figures' pass."""
    whole = api.get("/api/overview", params={"as_of": AS_OF}).json()
    since = (T0 - dt.timedelta(hours=1)).isoformat()
    ranged = api.get("/api/overview", params={"as_of": AS_OF, "since": since}).json()

    assert ranged["totals"] == whole["totals"] and ranged["workflows"] == whole["workflows"]
    for figure in ("started", "completed", "failed", "stuck", "breached"):
        counted = sum(point[figure] for point in ranged["trend"])
        assert counted == sum(point[figure] for point in whole["trend"]), figure
    assert sum(point["started"] for point in ranged["trend"]) == ranged["totals"]["transactions"] == 9
    assert sum(point["stuck"] for point in ranged["trend"]) == ranged["totals"]["stuck"]


def test_a_whole_history_of_months_draws_the_same_trend_as_a_range_of_the_same_bucket(
    api: httpx.Client,
) -> None:
    """With no start, the figures' pass counts the trend per day and the days are summed into the
    bucket drawn (a week, 100 days on): the points a range with that bucket counts in the store."""
    as_of = (T0 + dt.timedelta(days=100)).isoformat()
    whole = api.get("/api/overview", params={"as_of": as_of}).json()
    since = (T0 - dt.timedelta(hours=1)).isoformat()
    ranged = api.get("/api/overview", params={"as_of": as_of, "since": since}).json()

    assert whole["trend_bucket_seconds"] == ranged["trend_bucket_seconds"] == 7 * 86400
    assert whole["trend"] == ranged["trend"]
    assert sum(point["started"] for point in whole["trend"]) == whole["totals"]["transactions"] == 9
    assert sum(point["stuck"] for point in whole["trend"]) == whole["totals"]["stuck"] > 0


def test_overview_since_until_and_workflow_narrow_it(api: httpx.Client) -> None:
    late = (T0 + dt.timedelta(minutes=300)).isoformat()
    assert (
        api.get("/api/overview", params={"as_of": AS_OF, "since": late}).json()["totals"]["transactions"] == 2
    )
    other = api.get("/api/overview", params={"as_of": AS_OF, "workflow": "support-credit"}).json()
    assert other["totals"]["transactions"] == 0 and other["workflows"] == []
    bad = api.get("/api/overview", params={"since": AS_OF, "until": T0.isoformat()})
    assert bad.status_code == 400


def test_the_process_map_counts_directly_follows_edges_and_variants(api: httpx.Client) -> None:
    found = api.get("/api/workflows/quote-to-cash/map").json()
    assert found["transactions"] == 9
    edges = {(edge["source"], edge["target"]): edge for edge in found["edges"]}
    won_validated = edges["crm.opportunity.won", "erp.customer.validated"]
    assert won_validated["count"] == 9 and won_validated["expected"] is True
    assert won_validated["median_seconds"] == 600.0
    assert edges["cpq.quote.approved", "billing.subscription.activated"]["expected"] is False  # RULE-1
    variants = {tuple(variant["steps"]): variant["transactions"] for variant in found["variants"]}
    assert variants[tuple(step for step, _ in Q2C)] == 3  # DONE-1, DONE-2 and LATE-1
    assert sum(variants.values()) == 9
    nodes = {node["step"]: node for node in found["nodes"]}
    assert (
        nodes["crm.opportunity.won"]["transactions"] == 9
        and nodes["crm.opportunity.won"]["system"] == "salesforce"
    )


def test_an_unknown_workflow_has_no_map(api: httpx.Client) -> None:
    assert api.get("/api/workflows/no-such-flow/map").status_code == 404


def test_systems_report_errors_retries_and_latency(api: httpx.Client) -> None:
    report = api.get("/api/systems").json()
    systems = {system["system"]: system for system in report["systems"]}
    assert set(systems) == {"salesforce", "netsuite", "cpq", "stripe", "zendesk"}
    assert systems["netsuite"]["errors"] == 1
    assert systems["netsuite"]["error_rate"] == pytest.approx(1 / systems["netsuite"]["events"])
    assert systems["salesforce"]["latency_p50_ms"] == pytest.approx(120.0)
    assert sum(point["events"] for point in systems["stripe"]["series"]) == systems["stripe"]["events"]


def test_workflows_are_listed_with_their_definitions(api: httpx.Client) -> None:
    workflows = {w["name"]: w for w in api.get("/api/workflows").json()}
    assert set(workflows) >= {
        "quote-to-cash",
        "customer-onboarding",
        "subscription-renewal",
        "support-credit",
    }
    assert workflows["quote-to-cash"]["sla_seconds"] == 14400
    assert workflows["quote-to-cash"]["steps"][3]["after"] == ["erp.customer.validated", "cpq.quote.approved"]


def test_a_bad_definitions_file_is_not_reloaded_and_the_old_ones_stay(
    api: httpx.Client, collector: CollectorProcess
) -> None:
    good = collector.workflows.read_text()
    collector.workflows.write_text(good.replace("after: [crm.opportunity.won]", "after: [crm.nope]"))
    try:
        response = api.post("/api/workflows/reload")
        assert response.status_code == 400
        assert "crm.nope" in response.json()["message"] and "workflows.yaml:" in response.json()["message"]
        assert len(api.get("/api/workflows").json()) == 4
    finally:
        collector.workflows.write_text(good)


def test_a_reload_of_invalid_yaml_or_of_no_file_names_it_and_keeps_the_definitions(
    api: httpx.Client, collector: CollectorProcess
) -> None:
    good = collector.workflows.read_text()
    path = collector.workflows
    try:
        path.write_text(good + "\n  broken: [\n")
        invalid = api.post("/api/workflows/reload")
        assert invalid.status_code == 400
        assert invalid.json()["problems"] == [
            {"field": "workflows", "reason": invalid.json()["message"].removeprefix("not reloaded: ")}
        ]
        assert invalid.json()["message"].startswith(f"not reloaded: {path}:{len(good.splitlines()) + 3}: ")
        path.unlink()
        gone = api.post("/api/workflows/reload")
        assert gone.status_code == 400
        assert gone.json()["message"] == f"not reloaded: {path}: cannot be read: No such file or directory"
        assert len(api.get("/api/workflows").json()) == 4
    finally:
        path.write_text(good)


def test_sighup_reloads_the_definitions(api: httpx.Client, collector: CollectorProcess) -> None:
    good = collector.workflows.read_text()
    extra = "\n  tiny:\n    steps:\n      - {name: a.b.c, system: x}\n"
    collector.workflows.write_text(good + extra)
    try:
        assert collector.process is not None
        collector.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "tiny" not in {
            w["name"] for w in api.get("/api/workflows").json()
        }:
            time.sleep(0.1)
        assert "tiny" in {w["name"] for w in api.get("/api/workflows").json()}
    finally:
        collector.workflows.write_text(good)
        assert api.post("/api/workflows/reload").status_code == 200


def test_the_openapi_schema_documents_every_endpoint(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/events",
        "/v1/traces",
        "/v1/logs",
        "/api/transactions/{key}",
        "/api/transactions",
        "/api/overview",
        "/api/workflows",
        "/api/workflows/{name}/map",
        "/api/systems",
        "/api/traces/{trace_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert api.get("/docs").status_code == 200


def test_a_collector_refuses_to_start_on_a_bad_definitions_file(tmp_path: Path) -> None:
    broken = tmp_path / "workflows.yaml"
    broken.write_text("workflows:\n  a:\n    steps:\n      - {name: x, after: [y]}\n")
    with pytest.raises(RuntimeError) as failed:
        CollectorProcess(store_dir=tmp_path / "store", workflows=broken).start(timeout_s=30)
    assert "workflows.yaml:4" in str(failed.value) and "unknown step" in str(failed.value)


# Keys as ERPs write them (Odoo's "SO/2026/00042"), and every character a URL path gives a meaning.
AWKWARD_KEYS = ["SO/2026/00042", "INV #7", "a?b", "50%off", "A+B", "/lead", "trail/", "RMA/1/resolve"]
AWKWARD_WORKFLOW = "sales/EMEA #2"


def encoded(name: str) -> str:
    """What a correct client sends: the whole name percent-encoded, "/" as %2F (httpx leaves it so)."""
    return quote(name, safe="")


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A collector holding transactions under the awkward keys, each with an awkward alias."""
    running = CollectorProcess(store_dir=tmp_path_factory.mktemp("awkward") / "store").start()
    dataset = [
        event(key, "crm.opportunity.won", "salesforce", n, aliases={"erp.invoice": f"{key}/INV?n=1"})
        for n, key in enumerate(AWKWARD_KEYS)
    ]
    dataset.append(event("EMEA-1", "crm.opportunity.won", "salesforce", 0, workflow=AWKWARD_WORKFLOW))
    with httpx.Client(base_url=running.url, timeout=30) as client:
        assert client.post("/v1/events", json={"events": dataset}).status_code == 200
        yield client
    running.stop()


def test_every_stored_key_and_alias_is_looked_up_when_percent_encoded(awkward: httpx.Client) -> None:
    for key in AWKWARD_KEYS:
        for lookup in (key, f"{key}/INV?n=1"):
            found = awkward.get(f"/api/transactions/{encoded(lookup)}")
            assert found.status_code == 200, (lookup, found.status_code, found.text)
            assert found.json()["correlation_id"] == key, lookup
    unknown = awkward.get(f"/api/transactions/{encoded('SO/2026/00043')}")
    assert unknown.status_code == 404 and "'SO/2026/00043'" in unknown.json()["message"]


def test_a_workflow_named_with_a_slash_has_its_process_map(awkward: httpx.Client) -> None:
    found = awkward.get(f"/api/workflows/{encoded(AWKWARD_WORKFLOW)}/map")
    assert found.status_code == 200, found.text
    assert found.json()["transactions"] == 1
