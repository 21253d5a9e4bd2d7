"""The stored columns are declared once (storage/columns.py), and the declaration is the tables.

The DDL is history (numbered migrations, never edited); the declaration must say what those
migrations leave in a fresh store, column by column: name, type and place. The rows the collector
writes come from it, and an event is stored as it always was. The API's views of an event and a
span read the declared columns and show each one they read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from tests.support.ingest import new_span_id, new_trace_id, otlp_json_request, otlp_json_span
from threadline.collector.ingest import otlp
from threadline.collector.models import EventErrorView, EventView, ScopeView, SpanView
from threadline.collector.schema import BusinessEvent, EventError
from threadline.collector.state.traces import SPAN_VIEW_COLUMNS
from threadline.collector.state.transactions import EVENT_VIEW_COLUMNS
from threadline.collector.storage import Store
from threadline.collector.storage.columns import EVENT_COLUMNS, EVENTS, SPAN_COLUMNS, SPANS, Columns
from threadline.collector.storage.writes import store_events

TABLE_COLUMNS = """
SELECT name, type FROM system.columns
WHERE database = currentDatabase() AND table = {table:String}
ORDER BY position
"""

AT = dt.datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize("declared", [EVENTS, SPANS], ids=["events", "spans"])
def test_the_declaration_is_what_the_migrations_leave_in_a_fresh_store(
    store: Store, declared: Columns[Any]
) -> None:
    stored = store.query(TABLE_COLUMNS, {"table": declared.table.name}).result_rows
    assert [(column.name, column.type) for column in declared.columns] == [tuple(row) for row in stored]


def stored_events(store: Store, correlation_id: str) -> list[dict[str, Any]]:
    sql = (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
        "WHERE correlation_id = {key:String} ORDER BY event_id"
    )
    return store.rows(sql, {"key": correlation_id})


def test_an_event_is_stored_with_every_field_in_its_column(store: Store) -> None:
    full = BusinessEvent(
        correlation_id="OPP-COLUMNS",
        workflow="quote-to-cash",
        step="invoice.posted",
        system="stripe",
        timestamp=AT,
        status="error",
        event_id="e1",
        duration_ms=12.5,
        aliases={"erp.sales_order": "SO-COLUMNS"},
        error=EventError(kind="business", message="card declined", type="CardError", stacktrace="at pay()"),
        attempt=2,
        amount=1250.0,
        currency="usd",
        attributes={"region": "emea"},
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
    )
    bare = BusinessEvent(
        correlation_id="OPP-COLUMNS", workflow="quote-to-cash", step="quote.sent", system="cpq", timestamp=AT
    )

    store_events(store, "acme", [full, bare], "json")

    first, second = stored_events(store, "OPP-COLUMNS")
    for row in (first, second):
        assert isinstance(row.pop("seq"), int) and isinstance(row.pop("version"), int)
        assert abs(row.pop("received_at").replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(
            minutes=1
        )
        row["timestamp"] = row["timestamp"].replace(tzinfo=dt.UTC)
    assert first == {
        "tenant": "acme",
        "transaction_id": "OPP-COLUMNS",
        "correlation_id": "OPP-COLUMNS",
        "event_id": "e1",
        "workflow": "quote-to-cash",
        "step": "invoice.posted",
        "system": "stripe",
        "status": "error",
        "timestamp": AT,
        "duration_ms": 12.5,
        "attempt": 2,
        "error_kind": "business",
        "error_message": "card declined",
        "amount": 1250.0,
        "currency": "USD",
        "aliases": {"erp.sales_order": "SO-COLUMNS"},
        "attributes": {"region": "emea"},
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "source": "json",
        "error_type": "CardError",
        "error_stacktrace": "at pay()",
    }
    # What an event does not say is stored as "" in a text column, NULL in a number's.
    assert second == {
        "tenant": "acme",
        "transaction_id": "OPP-COLUMNS",
        "correlation_id": "OPP-COLUMNS",
        "event_id": bare.event_id,
        "workflow": "quote-to-cash",
        "step": "quote.sent",
        "system": "cpq",
        "status": "ok",
        "timestamp": AT,
        "duration_ms": None,
        "attempt": None,
        "error_kind": "",
        "error_message": "",
        "amount": None,
        "currency": "",
        "aliases": {},
        "attributes": {},
        "trace_id": "",
        "span_id": "",
        "source": "json",
        "error_type": "",
        "error_stacktrace": "",
    }


def test_an_otlp_span_converts_to_exactly_the_declared_span_columns() -> None:
    span = otlp_json_span(new_trace_id(), new_span_id(), "GET /orders", attributes={"http.status_code": 200})
    request = otlp.decode(orjson.dumps(otlp_json_request("order-sync", span)), is_json=True)

    (converted,) = otlp.convert(request, tenant="acme").spans

    assert set(converted) == set(SPAN_COLUMNS)


def test_an_event_view_shows_each_stored_column_it_reads() -> None:
    error_columns = {f"error_{field}" for field in EventErrorView.model_fields}
    assert set(EVENT_VIEW_COLUMNS) == set(EventView.model_fields) - {"error"} | error_columns


def test_a_span_view_shows_each_stored_column_it_reads() -> None:
    scope_columns = {f"scope_{field}" for field in ScopeView.model_fields}
    how_to_read_the_maps = {"typed_values"}
    assert (
        set(SPAN_VIEW_COLUMNS)
        == set(SpanView.model_fields) - {"scope"} | scope_columns | how_to_read_the_maps
    )
