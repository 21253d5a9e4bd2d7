"""Business dimensions on the real embedded engine: a workflow's ``dimensions:`` are read from its
events' attributes by the state keeper, stored per transaction, and filter the queue and group the
overview (``state/dimensions.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from threadline.collector.schema import parse_batch
from threadline.collector.state import snapshot, transactions
from threadline.collector.state.dimensions import DimensionFilter
from threadline.collector.state.overview import overview
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import Workflows, parse

TENANT = "acme"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DEFINITIONS = """
workflows:
  quote-to-cash:
    dimensions: [region, attributes.segment]
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.order.created, system: netsuite, after: [crm.opportunity.won]}
  support-credit:
    steps:
      - {name: support.credit.requested, system: zendesk}
"""
WORKFLOWS = parse(DEFINITIONS)


def event(
    key: str, step: str, minutes_ago: float, workflow: str = "quote-to-cash", **attributes: str
) -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": workflow,
        "step": step,
        "system": "salesforce",
        "timestamp": (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
        "attributes": attributes,
    }


def send(store: Store, *events: dict[str, Any], workflows: Workflows = WORKFLOWS) -> None:
    parsed = parse_batch(orjson.dumps({"events": list(events)}))
    with store.writing():  # as ingest's writer does
        store_events(store, TENANT, parsed, "json", workflows.key_rules)
    snapshot.keep(store, workflows, TENANT)


def queue(
    store: Store, *wanted: str, workflows: Workflows = WORKFLOWS, as_of: dt.datetime | None = None
) -> dict[str, dict[str, str]]:
    filters = transactions.ListFilters(dimensions=tuple(DimensionFilter.parse(text) for text in wanted))
    moment = as_of or dt.datetime.now(dt.UTC)
    items, total, _ = transactions.page(store, workflows, TENANT, filters, moment, 50, None)
    assert total == len(items)
    return {item.correlation_id: item.dimensions for item in items}


def test_each_dimension_is_the_latest_value_its_events_carry_and_filters_the_queue(store: Store) -> None:
    send(
        store,
        event("OPP-1", "crm.opportunity.won", 30, region="EMEA", segment="enterprise"),
        event("OPP-1", "erp.order.created", 20, region="UK"),  # the ERP booked it under the UK entity
        event("OPP-2", "crm.opportunity.won", 30, region="EMEA", segment="smb"),
        event("OPP-3", "crm.opportunity.won", 30, region="AMER"),
        event("OPP-4", "crm.opportunity.won", 30),  # carries neither
        event("CR-1", "support.credit.requested", 30, workflow="support-credit", region="EMEA"),
    )
    assert queue(store, "region:EMEA") == {"OPP-2": {"region": "EMEA", "segment": "smb"}}
    assert queue(store, "region:UK") == {"OPP-1": {"region": "UK", "segment": "enterprise"}}
    assert queue(store, "attributes.segment:smb", "region:EMEA") == {
        "OPP-2": {"region": "EMEA", "segment": "smb"}
    }
    assert queue(store, "segment:smb", "region:AMER") == {}
    everything = queue(store)
    assert everything["OPP-4"] == {} and everything["OPP-3"] == {"region": "AMER"}
    assert everything["CR-1"] == {}  # its workflow declares no dimensions
    found = transactions.find(store, WORKFLOWS, TENANT, "OPP-1", dt.datetime.now(dt.UTC))
    assert found is not None and found.summary.dimensions == {"region": "UK", "segment": "enterprise"}


def test_a_slice_asked_before_the_latest_events_lists_only_its_transactions(store: Store) -> None:
    """As of a moment before some events, those transactions are derived from their events up to
    then, outside the snapshot: the slice applies to them too."""
    send(
        store,
        event("OPP-1", "crm.opportunity.won", 30, region="EMEA"),
        event("OPP-2", "crm.opportunity.won", 30, region="AMER"),
        event("OPP-1", "erp.order.created", 5, region="EMEA"),
        event("OPP-2", "erp.order.created", 5, region="AMER"),
    )
    earlier = NOW - dt.timedelta(minutes=10)
    assert set(queue(store, "region:EMEA", as_of=earlier)) == {"OPP-1"}
    assert set(queue(store, "region:AMER", as_of=earlier)) == {"OPP-2"}


def test_a_later_event_moves_the_transaction_to_its_new_value(store: Store) -> None:
    send(store, event("OPP-1", "crm.opportunity.won", 30, region="EMEA"))
    assert set(queue(store, "region:EMEA")) == {"OPP-1"}
    send(store, event("OPP-1", "erp.order.created", 5, region="APAC"))
    assert queue(store, "region:EMEA") == {}
    assert set(queue(store, "region:APAC")) == {"OPP-1"}


def test_a_dimension_declared_later_is_derived_for_every_stored_transaction(store: Store) -> None:
    before = parse(DEFINITIONS.replace("    dimensions: [region, attributes.segment]\n", ""))
    send(store, event("OPP-1", "crm.opportunity.won", 30, region="EMEA"), workflows=before)
    assert queue(store, workflows=before)["OPP-1"] == {}
    snapshot.keep(store, WORKFLOWS, TENANT)  # the definitions changed: every transaction again
    assert queue(store, "region:EMEA") == {"OPP-1": {"region": "EMEA"}}


def test_the_overview_filters_by_a_dimension_and_groups_by_one(store: Store) -> None:
    send(
        store,
        event("OPP-1", "crm.opportunity.won", 30, region="EMEA", segment="enterprise"),
        event("OPP-1", "erp.order.created", 20),  # completed
        event("OPP-2", "crm.opportunity.won", 30, region="EMEA", segment="smb"),
        event("OPP-3", "crm.opportunity.won", 30, region="AMER", segment="smb"),
        event("OPP-4", "crm.opportunity.won", 30),
    )
    now = dt.datetime.now(dt.UTC)
    emea = overview(store, WORKFLOWS, TENANT, "", None, None, now, (DimensionFilter("region", "EMEA"),))
    assert (emea.totals.transactions, emea.totals.completed, emea.groups) == (2, 1, [])
    grouped = overview(store, WORKFLOWS, TENANT, "", None, None, now, group_by="region")
    assert grouped.group_by == "region"
    assert [(group.value, group.transactions, group.completed) for group in grouped.groups] == [
        ("EMEA", 2, 1),
        (None, 1, 0),  # carries no region
        ("AMER", 1, 0),
    ]
    assert grouped.totals.transactions == 4
    smb = overview(
        store, WORKFLOWS, TENANT, "", None, None, now, (DimensionFilter("segment", "smb"),), group_by="region"
    )
    assert [(group.value, group.transactions) for group in smb.groups] == [("AMER", 1), ("EMEA", 1)]
