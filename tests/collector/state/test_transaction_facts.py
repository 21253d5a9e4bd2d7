"""A transaction's facts derived from its steps' latest values (``state/transaction_facts.py``): the
reconciliation and the dimensions come from one read of those values, on the real embedded engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from threadline.collector.schema import parse_batch
from threadline.collector.state import dimensions, reconciliation, transaction_facts
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import parse

TENANT = "acme"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
WORKFLOWS = parse(
    """
workflows:
  quote-to-cash:
    dimensions: [region]
    reconcile:
      - {value: amount, steps: [crm.opportunity.won, erp.order.created], tolerance: 0.5%}
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.order.created, system: netsuite, after: [crm.opportunity.won]}
  onboarding:
    dimensions: [tier]
    steps:
      - {name: crm.account.created, system: salesforce}
"""
)


def event(key: str, workflow: str, step: str, minutes_ago: int, **fields: Any) -> dict[str, Any]:
    at = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat()
    return {
        "correlation_id": key,
        "workflow": workflow,
        "step": step,
        "system": "crm",
        "timestamp": at,
        **fields,
    }


def test_a_pass_reads_the_steps_values_once_and_derives_the_reconciliation_and_the_dimensions(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [
        event(
            "OPP-1",
            "quote-to-cash",
            "crm.opportunity.won",
            30,
            amount=48000,
            currency="EUR",
            attributes={"region": "EMEA"},
        ),
        event("OPP-1", "quote-to-cash", "erp.order.created", 20, amount=46000, currency="EUR"),
        event("ACC-1", "onboarding", "crm.account.created", 10, attributes={"tier": "gold"}),
    ]
    since = NOW - dt.timedelta(days=1)
    with store.writing():
        store_events(
            store, TENANT, parse_batch(orjson.dumps({"events": events})), "json", WORKFLOWS.key_rules
        )
    reads: list[str] = []
    rows = store.rows

    def counted(sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        reads.append(sql)
        return rows(sql, parameters)

    monkeypatch.setattr(store, "rows", counted)

    transaction_facts.keep_changed(store, WORKFLOWS, TENANT, since)

    assert reads.count(reconciliation.CHANGED_STEP_VALUES) == 1
    mismatched = store.rows(
        reconciliation.OF_TRANSACTIONS, {"tenant": TENANT, "transactions": ["OPP-1", "ACC-1"]}
    )
    assert [(row["transaction_id"], list(row["mismatch_fields"])) for row in mismatched] == [
        ("OPP-1", ["amount"])
    ]
    assert dimensions.of_transactions(store, WORKFLOWS, TENANT, ["OPP-1", "ACC-1"]) == {
        "OPP-1": {"region": "EMEA"},
        "ACC-1": {"tier": "gold"},
    }
