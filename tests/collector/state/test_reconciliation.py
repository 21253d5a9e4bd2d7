"""Reconciliation on the real embedded engine: values a transaction's systems must agree on
(``reconcile:``) and business keys its workflow's transactions must not share (``unique_by:``).

The state keeper derives both when a transaction's events change (``snapshot.keep``), and again
for every transaction when the definitions change; the queue, the lookup and the overview read what
it stored.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pytest

from threadline.collector.cursors import AFTER_EVERY_ID
from threadline.collector.models import TransactionSummary
from threadline.collector.schema import parse_batch
from threadline.collector.state import snapshot, transactions
from threadline.collector.state.overview import overview
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import Workflows, parse

TENANT = "acme"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DEFINITIONS = (Path(__file__).parents[2] / "fixtures" / "reconciliation-workflows.yaml").read_text()
WORKFLOWS = parse(DEFINITIONS)


def event(key: str, step: str, system: str, minutes_ago: float, **fields: Any) -> dict[str, Any]:
    workflow = fields.pop("workflow", "quote-to-cash")
    if workflow == "quote-to-cash":
        fields.setdefault("attributes", {"plan": "pro"})  # the plan agrees unless a test says otherwise
    return {
        "correlation_id": key,
        "workflow": workflow,
        "step": step,
        "system": system,
        "timestamp": (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
        **fields,
    }


def send(store: Store, *events: dict[str, Any], workflows: Workflows = WORKFLOWS) -> None:
    parsed = parse_batch(orjson.dumps({"events": list(events)}))
    with store.writing():  # as ingest's writer does
        store_events(store, TENANT, parsed, "json", workflows.key_rules)
    snapshot.keep(store, workflows, TENANT)


def found(store: Store, key: str, workflows: Workflows = WORKFLOWS) -> TransactionSummary:
    result = transactions.find(store, workflows, TENANT, key, dt.datetime.now(dt.UTC))
    assert result is not None
    return result.summary


def won(key: str, amount: float, currency: str = "USD", minutes_ago: float = 30) -> dict[str, Any]:
    return event(key, "crm.opportunity.won", "salesforce", minutes_ago, amount=amount, currency=currency)


def test_amounts_within_the_tolerance_agree_and_one_beyond_it_is_a_mismatch_naming_every_step(
    store: Store,
) -> None:
    send(
        store,
        won("OPP-OK", 48000),
        event("OPP-OK", "erp.order.created", "netsuite", 20, amount=47800, currency="USD"),  # 0.42% off
        won("OPP-BAD", 48000),
        event("OPP-BAD", "erp.order.created", "netsuite", 20, amount=48000, currency="USD"),
        event("OPP-BAD", "billing.subscription.activated", "stripe", 10, amount=46000, currency="USD"),
    )
    assert found(store, "OPP-OK").mismatches == []
    [mismatch] = found(store, "OPP-BAD").mismatches
    assert mismatch.model_dump() == {
        "field": "amount",
        "kind": "differs",
        "tolerance": "0.5%",
        "steps": [
            {"step": "crm.opportunity.won", "system": "salesforce", "value": 48000.0, "currency": "USD"},
            {"step": "erp.order.created", "system": "netsuite", "value": 48000.0, "currency": "USD"},
            {
                "step": "billing.subscription.activated",
                "system": "stripe",
                "value": 46000.0,
                "currency": "USD",
            },
        ],
    }


def test_the_same_amount_in_another_currency_is_a_mismatch(store: Store) -> None:
    send(
        store,
        won("OPP-EUR", 48000),
        event("OPP-EUR", "erp.order.created", "netsuite", 20, amount=48000, currency="EUR"),
    )
    [mismatch] = found(store, "OPP-EUR").mismatches
    assert mismatch.kind == "differs"
    assert [(s.value, s.currency) for s in mismatch.steps] == [(48000.0, "USD"), (48000.0, "EUR")]


def test_a_step_that_happened_without_the_value_is_missing_and_one_not_yet_happened_is_not_judged(
    store: Store,
) -> None:
    send(
        store,
        won("OPP-NOAMT", 48000),
        event("OPP-NOAMT", "erp.order.created", "netsuite", 20, attributes={"plan": "pro"}),
    )
    mismatches = found(store, "OPP-NOAMT").mismatches
    assert [(m.field, m.kind, [(s.step, s.system, s.value) for s in m.steps]) for m in mismatches] == [
        ("amount", "missing", [("erp.order.created", "netsuite", None)])
    ]  # billing has not activated: neither its amount nor its plan is missing


def test_an_attribute_is_compared_as_text_and_the_latest_event_of_a_step_counts(store: Store) -> None:
    send(
        store,
        event("OPP-PLAN", "erp.order.created", "netsuite", 20, attributes={"plan": "pro"}),
        event("OPP-PLAN", "billing.subscription.activated", "stripe", 10, attributes={"plan": "basic"}),
    )
    mismatches = found(store, "OPP-PLAN").mismatches
    assert [(m.field, m.kind) for m in mismatches] == [("amount", "missing"), ("attributes.plan", "differs")]
    assert [s.value for s in mismatches[1].steps] == ["pro", "basic"]

    # Billing corrects the plan: its latest event is what counts, and the mismatch is gone.
    send(store, event("OPP-PLAN", "billing.subscription.activated", "stripe", 5, attributes={"plan": "pro"}))
    assert [m for m in found(store, "OPP-PLAN").mismatches if m.field == "attributes.plan"] == []


def test_the_queue_lists_mismatched_transactions_completed_ones_too_and_the_overview_counts_them(
    store: Store,
) -> None:
    send(
        store,
        won("OPP-DONE", 48000),
        event("OPP-DONE", "erp.order.created", "netsuite", 20, amount=48000, currency="USD"),
        event("OPP-DONE", "billing.subscription.activated", "stripe", 10, amount=40000, currency="USD"),
        won("OPP-FINE", 1000),
    )
    filters = transactions.ListFilters(with_mismatches=True)
    items, total, _ = transactions.page(store, WORKFLOWS, TENANT, filters, dt.datetime.now(dt.UTC), 50, None)
    assert [(item.correlation_id, item.state) for item in items] == [("OPP-DONE", "completed")]
    assert total == 1 and items[0].mismatches[0].field == "amount"

    figures = overview(store, WORKFLOWS, TENANT, "", None, None, dt.datetime.now(dt.UTC)).totals
    assert (figures.with_mismatches, figures.mismatched_values) == (1, {"amount": 1})


def account(key: str, tax_id: str, days_ago: float) -> dict[str, Any]:
    """An onboarding account created ``days_ago`` with its business key (``unique_by``)."""
    return event(
        key,
        "crm.account.created",
        "salesforce",
        days_ago * 1440,
        workflow="onboarding",
        attributes={"tax_id": tax_id},
    )


def test_two_transactions_with_the_same_business_key_within_the_window_link_to_each_other(
    store: Store,
) -> None:
    send(store, account("ONB-1", "DE123", 20), account("ONB-OTHER", "FR999", 20))
    assert found(store, "ONB-1").duplicates == []

    send(store, account("ONB-2", "DE123", 5), account("ONB-OLD", "FR999", 60))  # 40 days apart: not one
    first, second = found(store, "ONB-1"), found(store, "ONB-2")
    assert [(d.correlation_id, d.field) for d in first.duplicates] == [("ONB-2", "attributes.tax_id")]
    assert [d.correlation_id for d in second.duplicates] == ["ONB-1"]
    assert first.duplicates[0].value == second.duplicates[0].value  # the key, as stored (redacted)
    assert found(store, "ONB-OTHER").duplicates == [] and found(store, "ONB-OLD").duplicates == []

    filters = transactions.ListFilters(with_duplicates=True)
    items, _, _ = transactions.page(store, WORKFLOWS, TENANT, filters, dt.datetime.now(dt.UTC), 50, None)
    assert sorted(item.correlation_id for item in items) == ["ONB-1", "ONB-2"]


def test_new_definitions_derive_every_transaction_again(store: Store) -> None:
    send(
        store,
        won("OPP-LOOSE", 48000),
        event("OPP-LOOSE", "erp.order.created", "netsuite", 20, amount=47000, currency="USD"),
    )
    assert [m.kind for m in found(store, "OPP-LOOSE").mismatches] == ["differs"]

    looser = parse(DEFINITIONS.replace("tolerance: 0.5%", "tolerance: 5%"))
    snapshot.keep(store, looser, TENANT)  # a reload: nothing new received, yet everything derived again
    assert found(store, "OPP-LOOSE", looser).mismatches == []


TRANSACTION_IDS = """
SELECT DISTINCT transaction_id FROM transaction_rollups WHERE hasAny(keys, {keys:Array(String)})
ORDER BY transaction_id
"""


def test_a_pass_over_every_transaction_links_duplicates_kept_in_different_slices(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(store, account("ONB-1", "DE123", 20), account("ONB-2", "DE123", 5), account("ONB-3", "FR999", 5))
    ids = [row["transaction_id"] for row in store.rows(TRANSACTION_IDS, {"keys": ["ONB-1", "ONB-2"]})]
    split = [{"low": "", "high": ids[1]}, {"low": ids[1], "high": AFTER_EVERY_ID}]  # one in each
    monkeypatch.setattr(snapshot, "slices", lambda store, tenant: split)

    wider = parse(DEFINITIONS.replace("within: 30d", "within: 60d"))
    snapshot.keep(store, wider, TENANT)  # new definitions: every transaction derived again, slice by slice
    assert [d.correlation_id for d in found(store, "ONB-1", wider).duplicates] == ["ONB-2"]
    assert [d.correlation_id for d in found(store, "ONB-2", wider).duplicates] == ["ONB-1"]
    assert found(store, "ONB-3", wider).duplicates == []

    narrower = parse(DEFINITIONS.replace("within: 30d", "within: 10d"))  # 15 days apart: not one now
    snapshot.keep(store, narrower, TENANT)
    assert (
        found(store, "ONB-1", narrower).duplicates == [] and found(store, "ONB-2", narrower).duplicates == []
    )
