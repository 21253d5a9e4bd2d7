"""A technical trace: its spans, as sent, and the business events that link to it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson

from ..models import ScopeView, SpanEventView, SpanLinkView, SpanView, TraceView
from ..schema import EARLIEST
from ..storage import Store
from ..storage.columns import SPAN_COLUMNS
from .transactions import EVENT_VIEW_COLUMNS, event_view, utc

# What a span's view is made of: every stored column but the tenant (the caller's) and the arrival
# time (not shown). The scope's three make its `scope`; `typed_values` says how to read the maps.
SPAN_VIEW_COLUMNS = tuple(column for column in SPAN_COLUMNS if column not in ("tenant", "received_at"))

SPANS = f"""
SELECT {", ".join(SPAN_VIEW_COLUMNS)}
FROM spans FINAL
WHERE tenant = {{tenant:String}} AND trace_id = {{trace_id:String}}
ORDER BY start_time, span_id
"""

EVENTS = f"""
SELECT {", ".join(EVENT_VIEW_COLUMNS)}
FROM events FINAL
WHERE tenant = {{tenant:String}} AND trace_id = {{trace_id:String}}
ORDER BY timestamp, event_id
"""


def _attributes(stored: Mapping[str, str], typed: bool) -> dict[str, Any]:
    """A stored attribute map: JSON values since migration 6, plain text before it."""
    return {key: orjson.loads(value) for key, value in stored.items()} if typed else dict(stored)


def span_view(row: dict[str, Any]) -> SpanView:
    typed = row.pop("typed_values")
    scope = ScopeView(
        name=row.pop("scope_name"),
        version=row.pop("scope_version"),
        attributes=_attributes(row.pop("scope_attributes"), typed),
    )
    events = [
        SpanEventView(
            name=event["name"],
            time=EARLIEST + dt.timedelta(microseconds=event["time_unix_nano"] // 1000),
            attributes=event["attributes"],
        )
        for event in orjson.loads(row.pop("events") or "[]")
    ]
    links = [SpanLinkView(**link) for link in orjson.loads(row.pop("links") or "[]")]
    row.update(
        parent_span_id=row["parent_span_id"] or None,
        start_time=utc(row["start_time"]),
        end_time=utc(row["end_time"]),
        attributes=_attributes(row["attributes"], typed),
        resource=_attributes(row["resource"], typed),
    )
    return SpanView(**row, events=events, links=links, scope=scope)


def trace(store: Store, tenant: str, trace_id: str) -> TraceView:
    parameters = {"tenant": tenant, "trace_id": trace_id}
    spans = [span_view(row) for row in store.rows(SPANS, parameters)]
    events = [event_view(row) for row in store.rows(EVENTS, parameters)]
    return TraceView(trace_id=trace_id, spans=spans, events=events)
