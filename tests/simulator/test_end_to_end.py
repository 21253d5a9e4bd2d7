"""The simulator against a real collector: right after the back-fill the API shows what the demo needs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.polling import eventually
from threadline.simulator import SimulationStats, simulate
from threadline.simulator.systems import KNOWN

STATES = ("completed", "failed", "stuck", "in_progress")
# Where each showcase must be as of the end of the back-fill.
EXPECTED = {
    "transient": "completed",
    "rejection": "failed",
    "stuck": "stuck",
    "violation": "completed",
    "duplicate": "completed",
    "out_of_order": "completed",
    "late_alias": "completed",
    "mismatch": "completed",  # every step succeeded: only the reconciliation tells
    "duplicate_entity": "completed",  # the first onboarding; its twin waits, stuck
}
# The completed renewal is the showcase whose keys form a chain (OPP -> INV -> SO).
ALIAS_CHAIN = "subscription-renewal:completed"


@dataclass
class Demo:
    collector: CollectorProcess
    stats: SimulationStats
    http: httpx.Client
    seconds_to_four_states: float

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo")
    collector = CollectorProcess(store_dir=folder / "store").start()
    began = time.monotonic()
    try:
        stats = simulate(
            collector.url,
            rate=0,
            seed=7,
            backfill_days=2,
            backfill_per_day=60,
            duration_s=0,
            spool_dir=folder / "spool",
        )
        with httpx.Client(base_url=collector.url, timeout=30) as http:
            totals = {s: http.get("/api/transactions", params={"state": s}).json()["total"] for s in STATES}
            assert all(totals.values()), totals
            yield Demo(collector, stats, http, time.monotonic() - began)
    finally:
        collector.stop()


def test_all_four_states_show_within_the_first_minute(demo: Demo) -> None:
    assert demo.stats.delivered
    assert demo.seconds_to_four_states < 60
    for state in STATES:
        page = demo.get("/api/transactions", state=state, limit=5)
        assert page["total"] >= 4  # one per workflow at least
        assert {item["state"] for item in page["items"]} == {state}
    overview = demo.get("/api/overview")["totals"]
    assert overview["transactions"] == demo.stats.backfill_transactions


def expected_state(label: str) -> str:
    return EXPECTED.get(label) or label.rsplit(":", 1)[1]


@pytest.mark.parametrize(
    "label",
    [
        *(
            f"{w}:{s}"
            for w in ("quote-to-cash", "customer-onboarding", "support-credit", "subscription-renewal")
            for s in STATES
        ),
        *EXPECTED,
    ],
)
def test_each_showcase_is_in_its_planned_state(demo: Demo, label: str) -> None:
    ref = demo.stats.examples[label]
    detail = demo.get(f"/api/transactions/{ref.correlation_id}")
    assert detail["correlation_id"] == ref.correlation_id
    assert detail["workflow"] == ref.workflow
    assert detail["state"] == expected_state(label)


def test_an_alias_chain_makes_one_transaction(demo: Demo) -> None:
    ref = demo.stats.examples[ALIAS_CHAIN]
    for key in (ref.correlation_id, *ref.aliases.values()):
        detail = demo.get(f"/api/transactions/{key}")
        assert detail["correlation_id"] == ref.correlation_id
        assert detail["state"] == "completed" and not detail["violations"]


def test_a_credit_posted_before_approval_is_a_governance_violation(demo: Demo) -> None:
    ref = demo.stats.examples["violation"]
    detail = demo.get(f"/api/transactions/{ref.correlation_id}")
    assert detail["violations"] == [
        {
            "rule": "out_of_order",
            "step": "billing.credit.posted",
            "before": "erp.credit.approved",
            "after": None,
        }
    ]
    flagged = demo.get("/api/transactions", violations="true", workflow="support-credit", limit=1000)
    assert ref.correlation_id in {item["correlation_id"] for item in flagged["items"]}


@pytest.mark.parametrize(
    ("label", "kind", "sent_alone"),
    [
        ("quote-to-cash:completed", "erp.sales_order", True),  # Stripe knows the sales order only
        ("late_alias", "erp.sales_order", True),  # NetSuite's order, before Stripe announced the alias
        ("customer-onboarding:completed", "erp.customer", True),
        ("support-credit:completed", "erp.credit_memo", False),  # announced, never used alone
    ],
)
def test_an_alias_finds_the_transaction_it_belongs_to(
    demo: Demo, label: str, kind: str, sent_alone: bool
) -> None:
    ref = demo.stats.examples[label]
    alias = ref.aliases[kind]
    detail = demo.get(f"/api/transactions/{alias}")
    assert detail["correlation_id"] == ref.correlation_id
    assert detail["aliases"][kind] == alias
    assert {event["event_id"] for event in detail["events"]} == set(ref.event_ids)
    assert (alias in {event["correlation_id"] for event in detail["events"]}) is sent_alone


def test_a_duplicate_delivery_is_counted_once(demo: Demo) -> None:
    ref = demo.stats.examples["duplicate"]
    detail = demo.get(f"/api/transactions/{ref.correlation_id}")
    event_ids = [event["event_id"] for event in detail["events"]]
    assert sorted(event_ids) == sorted(ref.event_ids)  # each once, though one was delivered twice
    assert detail["event_count"] == len(ref.event_ids)


def test_retries_and_errors_are_counted(demo: Demo) -> None:
    detail = demo.get(f"/api/transactions/{demo.stats.examples['transient'].correlation_id}")
    assert detail["retry_count"] >= 1 and detail["error_count"] >= 1
    retried = [step for step in detail["steps"] if step["attempts"] >= 2]
    assert retried and retried[0]["status"] == "ok"


def test_late_and_stuck_transactions_breach_their_sla(demo: Demo) -> None:
    breached = demo.get("/api/transactions", breached="true", limit=1000)
    keys = {item["correlation_id"] for item in breached["items"]}
    for label in ("quote-to-cash:stuck", "support-credit:stuck", "customer-onboarding:stuck"):
        assert demo.stats.examples[label].correlation_id in keys


def test_every_system_reports_its_health(demo: Demo) -> None:
    systems = {item["system"]: item for item in demo.get("/api/systems")["systems"]}
    assert set(systems) == set(KNOWN)
    for item in systems.values():
        assert item["events"] > 0 and item["latency_p50_ms"] > 0
    assert systems["netsuite"]["latency_p50_ms"] > systems["stripe"]["latency_p50_ms"]  # ERPs are slower


def test_a_deal_its_systems_book_differently_is_a_mismatch(demo: Demo) -> None:
    ref = demo.stats.examples["mismatch"]

    def flagged() -> set[str]:
        items = demo.get("/api/transactions", issue="mismatch", limit=1000)["items"]
        return {item["correlation_id"] for item in items}

    eventually(lambda: ref.correlation_id in flagged(), what="the reconciliation of the mismatch showcase")
    [mismatch] = demo.get(f"/api/transactions/{ref.correlation_id}")["mismatches"]
    assert mismatch["field"] == "amount" and mismatch["tolerance"] == "0.5%"
    assert {step["step"] for step in mismatch["steps"]} & {
        "erp.order.created",
        "billing.subscription.activated",
    }


def test_a_customer_onboarded_twice_is_two_possible_duplicates(demo: Demo) -> None:
    ref = demo.stats.examples["duplicate_entity"]
    assert ref.twin is not None

    def duplicates(key: str) -> list[str]:
        return [d["correlation_id"] for d in demo.get(f"/api/transactions/{key}")["duplicates"]]

    eventually(lambda: duplicates(ref.correlation_id) == [ref.twin], what="the first onboarding flagged")
    assert duplicates(ref.twin) == [ref.correlation_id]
    assert demo.get(f"/api/transactions/{ref.twin}")["state"] in ("in_progress", "stuck")
