"""The stored columns of events and spans, declared once: name, ClickHouse type, and how each row's
value is built. The column lists and the positional rows of the INSERTs derive from here.

The DDL that made these tables is history (migrations.py: stores in the field ran it, so it is never
edited, and a column added later comes last). This declaration is the tables as those migrations
leave them, in their order; tests/collector/storage/test_columns.py holds it to a fresh store's
``system.columns``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, Generic, NamedTuple, TypeVar

from ..schema import BusinessEvent, EventError
from .migrations import EVENTS as EVENTS_TABLE
from .migrations import SPANS as SPANS_TABLE
from .migrations import Table

# ClickHouse types, as system.columns spells them.
TEXT = "String"
LABEL = "LowCardinality(String)"  # few distinct values: dictionary-encoded
MAP = "Map(String, String)"
MICROSECONDS = "DateTime64(6, 'UTC')"
NANOSECONDS = "DateTime64(9, 'UTC')"

Source = TypeVar("Source")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    source: str = ""  # where its value is in what is stored (an attribute path, a key); default: its name
    convert: Callable[[Any], Any] | None = None  # the form the column needs, if not the value as it is


@dataclass(frozen=True)
class Columns(Generic[Source]):
    """A table's columns in its order, and the INSERT row of each thing stored in it.

    ``read`` is ``attrgetter`` or ``itemgetter``: one call of it takes every column's value (the
    row is built for every event ingested, so a call per column would show), then ``convert`` fixes
    the few that need another form.
    """

    table: Table
    columns: tuple[Column, ...]
    read: Callable[..., Callable[[Source], tuple[Any, ...]]]
    names: tuple[str, ...] = field(init=False)
    _values: Callable[[Source], tuple[Any, ...]] = field(init=False, repr=False, compare=False)
    _conversions: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(column.name for column in self.columns))
        object.__setattr__(
            self, "_values", self.read(*(column.source or column.name for column in self.columns))
        )
        conversions = tuple(
            (at, column.convert) for at, column in enumerate(self.columns) if column.convert is not None
        )
        object.__setattr__(self, "_conversions", conversions)

    def row(self, source: Source) -> list[Any]:
        row = list(self._values(source))
        for at, convert in self._conversions:
            row[at] = convert(row[at])
        return row


class StoredEvent(NamedTuple):
    """A validated event and what the collector adds to it as it stores it."""

    event: BusinessEvent
    tenant: str
    transaction_id: str  # the transaction its key belonged to when it arrived
    source: str  # how it came: json, otlp, replay
    received_at: dt.datetime
    seq: int  # arrival order across batches: ties in event time keep it
    version: int


def _or_empty(value: str | None) -> str:
    """An optional text: "" when absent (a String column holds no NULL)."""
    return value or ""


def _of_error(part: str) -> Callable[[EventError | None], str]:
    """A part of the event's error: "" when the event has no error, or the error not that part."""
    return lambda error: (getattr(error, part) or "") if error else ""


EVENTS: Columns[StoredEvent] = Columns(
    EVENTS_TABLE,
    (
        Column("tenant", LABEL),
        Column("transaction_id", TEXT),
        Column("correlation_id", TEXT, "event.correlation_id"),
        Column("event_id", TEXT, "event.event_id"),
        Column("workflow", LABEL, "event.workflow"),
        Column("step", LABEL, "event.step"),
        Column("system", LABEL, "event.system"),
        Column("status", LABEL, "event.status"),
        Column("timestamp", MICROSECONDS, "event.timestamp"),
        Column("received_at", MICROSECONDS),
        Column("duration_ms", "Nullable(Float64)", "event.duration_ms"),
        Column("attempt", "Nullable(UInt32)", "event.attempt"),
        Column("error_kind", LABEL, "event.error", _of_error("kind")),
        Column("error_message", TEXT, "event.error", _of_error("message")),
        Column("amount", "Nullable(Float64)", "event.amount"),
        Column("currency", LABEL, "event.currency", _or_empty),
        Column("aliases", MAP, "event.aliases"),
        Column("attributes", MAP, "event.attributes"),
        Column("trace_id", TEXT, "event.trace_id", _or_empty),
        Column("span_id", TEXT, "event.span_id", _or_empty),
        Column("source", LABEL),
        Column("version", "UInt64"),
        Column("seq", "UInt64"),  # migration 4
        Column("error_type", TEXT, "event.error", _of_error("type")),  # migration 7
        Column("error_stacktrace", TEXT, "event.error", _of_error("stacktrace")),  # migration 7
    ),
    attrgetter,
)

# A span comes as OTLP ingest converts it (otlp.convert): a mapping by column name.
SPANS: Columns[Mapping[str, Any]] = Columns(
    SPANS_TABLE,
    (
        Column("tenant", LABEL),
        Column("trace_id", TEXT),
        Column("span_id", TEXT),
        Column("parent_span_id", TEXT),
        Column("name", TEXT),
        Column("service", LABEL),
        Column("kind", LABEL),
        Column("start_time", NANOSECONDS),
        Column("end_time", NANOSECONDS),
        Column("duration_ms", "Float64"),
        Column("status_code", LABEL),
        Column("status_message", TEXT),
        Column("attributes", MAP),
        Column("resource", MAP),
        Column("events", TEXT),  # a JSON array
        Column("received_at", MICROSECONDS),
        # migration 6
        Column("links", TEXT),  # a JSON array
        Column("scope_name", LABEL),
        Column("scope_version", LABEL),
        Column("scope_attributes", MAP),
        Column("typed_values", "Bool"),  # attribute values as JSON (false: plain text, before migration 6)
    ),
    itemgetter,
)

EVENT_COLUMNS = EVENTS.names
SPAN_COLUMNS = SPANS.names
event_row = EVENTS.row
span_row = SPANS.row
