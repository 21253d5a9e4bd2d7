"""A technical trace: its spans, and the business events that link to it."""

from __future__ import annotations

from .models import SpanView, TraceView
from .storage import Store
from .storage.writes import EVENT_COLUMNS
from .transactions import event_view, utc

SPANS = """
SELECT trace_id, span_id, parent_span_id, name, service, kind, start_time, end_time, duration_ms,
       status_code, status_message, attributes
FROM spans FINAL
WHERE tenant = {tenant:String} AND trace_id = {trace_id:String}
ORDER BY start_time, span_id
"""

EVENTS = f"""
SELECT {", ".join(EVENT_COLUMNS)}
FROM events FINAL
WHERE tenant = {{tenant:String}} AND trace_id = {{trace_id:String}}
ORDER BY timestamp, event_id
"""


def trace(store: Store, tenant: str, trace_id: str) -> TraceView:
    parameters = {"tenant": tenant, "trace_id": trace_id}
    spans = []
    for row in store.rows(SPANS, parameters):
        row.update(
            parent_span_id=row["parent_span_id"] or None,
            attributes=dict(row["attributes"]),
            start_time=utc(row["start_time"]),
            end_time=utc(row["end_time"]),
        )
        spans.append(SpanView(**row))
    events = [event_view(row) for row in store.rows(EVENTS, parameters)]
    return TraceView(trace_id=trace_id, spans=spans, events=events)
