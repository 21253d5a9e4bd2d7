"""Storing business events and technical spans: deduplication and alias linking happen here.

Every event is stored under its own correlation id and carries the id of the transaction it
belongs to. An event's ``aliases`` announce other keys of the same transaction; an event that
arrives with only such a key joins it, whichever arrives first: when an alias is announced for a
key that already has events, those events are stored again with the new transaction id and a
higher ``version``, which replaces the old rows (ReplacingMergeTree, read with FINAL).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..schema import BusinessEvent
from .connection import Store

logger = logging.getLogger("threadline.collector")

EVENT_COLUMNS = (
    "tenant",
    "transaction_id",
    "correlation_id",
    "event_id",
    "workflow",
    "step",
    "system",
    "status",
    "timestamp",
    "received_at",
    "duration_ms",
    "attempt",
    "error_kind",
    "error_message",
    "amount",
    "currency",
    "aliases",
    "attributes",
    "trace_id",
    "span_id",
    "source",
    "version",
)
ALIAS_COLUMNS = ("tenant", "alias", "kind", "transaction_id", "announced_by", "first_seen", "version")
SPAN_COLUMNS = (
    "tenant",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "service",
    "kind",
    "start_time",
    "end_time",
    "duration_ms",
    "status_code",
    "status_message",
    "attributes",
    "resource",
    "events",
    "received_at",
)

EXISTING_EVENT_IDS = """
SELECT event_id
FROM events
WHERE tenant = {tenant:String}
  AND correlation_id IN {keys:Array(String)}
  AND event_id IN {event_ids:Array(String)}
"""

KNOWN_ALIASES = """
SELECT alias, argMax(transaction_id, version) AS transaction_id
FROM aliases
WHERE tenant = {tenant:String} AND alias IN {keys:Array(String)}
GROUP BY alias
"""

# The events of these transactions, found through the sort key: they are stored under each
# transaction's own id and its aliases (the skip index on transaction_id alone took seconds at 10 M).
OF_TRANSACTIONS = """
AND correlation_id IN (
    SELECT arrayJoin({transactions:Array(String)})
    UNION ALL
    SELECT alias FROM aliases
    WHERE tenant = {tenant:String} AND transaction_id IN {transactions:Array(String)}
)
AND transaction_id IN {transactions:Array(String)}
"""

EVENTS_OF_TRANSACTIONS = f"""
SELECT {", ".join(EVENT_COLUMNS)}
FROM events FINAL
WHERE tenant = {{tenant:String}} {OF_TRANSACTIONS}
"""

ALIASES_OF_TRANSACTIONS = f"""
SELECT {", ".join(ALIAS_COLUMNS)}
FROM aliases FINAL
WHERE tenant = {{tenant:String}} AND transaction_id IN {{transactions:Array(String)}}
"""


@dataclass(frozen=True)
class StoredEvents:
    new: list[bool]  # per event, in order: False for a duplicate (already stored, or earlier in the batch)
    relinked: int  # events stored earlier that joined another transaction through a new alias
    alias_conflicts: int  # aliases already claimed by another transaction (the first claim stands)
    changed: frozenset[str] = frozenset()  # transactions with new, re-sent or re-linked events
    gone: frozenset[str] = frozenset()  # transactions whose every event moved to another one


class TransactionKeys:
    """Which transaction each key belongs to: union of alias announcements, first claim wins."""

    def __init__(self, known: dict[str, str]) -> None:
        self._transaction_of = dict(known)
        self._members: dict[str, set[str]] = defaultdict(set)
        for key, transaction in known.items():
            self._members[transaction].add(key)
        self.new_aliases: dict[str, tuple[str, str]] = {}  # alias → (kind, announced by)
        self.conflicts = 0

    def transaction_of(self, key: str) -> str:
        return self._transaction_of.get(key, key)

    def announce(self, key: str, kind: str, alias: str) -> None:
        transaction = self.transaction_of(key)
        if alias == transaction or self._transaction_of.get(alias) == transaction:
            return
        if alias in self._transaction_of:
            self.conflicts += 1
            logger.warning(
                "threadline: alias %r of %r already belongs to transaction %r; kept there",
                alias,
                key,
                self._transaction_of[alias],
            )
            return
        # The alias may itself have been a transaction: everything that pointed at it moves over.
        for member in self._members.pop(alias, set()):
            self._transaction_of[member] = transaction
            self._members[transaction].add(member)
        self._transaction_of[alias] = transaction
        self._members[transaction].add(alias)
        self.new_aliases[alias] = (kind, key)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def event_row(
    event: BusinessEvent,
    tenant: str,
    transaction_id: str,
    source: str,
    received_at: dt.datetime,
    version: int,
) -> list[Any]:
    error = event.error
    return [
        tenant,
        transaction_id,
        event.correlation_id,
        event.event_id,
        event.workflow,
        event.step,
        event.system,
        event.status,
        event.timestamp,
        received_at,
        event.duration_ms,
        event.attempt,
        error.kind if error else "",
        error.message if error else "",
        event.amount,
        event.currency or "",
        event.aliases,
        event.attributes,
        event.trace_id or "",
        event.span_id or "",
        source,
        version,
    ]


def _version() -> int:
    return time.time_ns() // 1000


def store_events(store: Store, tenant: str, events: Sequence[BusinessEvent], source: str) -> StoredEvents:
    """Store a batch of validated events for one tenant; duplicates are detected and left out.

    Order matters for safety: aliases, then re-linked events, then the new events. If anything
    fails the caller does not acknowledge, the sender retries, and the retry finds what was
    already stored (by event_id) without losing the aliases it announced.
    """
    new = [True] * len(events)
    seen: set[str] = set()
    for index, event in enumerate(events):
        if event.event_id in seen:
            new[index] = False
        seen.add(event.event_id)  # type: ignore[arg-type]
    stored = {
        row[0]
        for row in store.query(
            EXISTING_EVENT_IDS,
            {"tenant": tenant, "keys": sorted({e.correlation_id for e in events}), "event_ids": sorted(seen)},
        ).result_rows
    }
    for index, event in enumerate(events):
        if event.event_id in stored:
            new[index] = False

    keys = {event.correlation_id for event in events} | {
        alias for event in events for alias in event.aliases.values()
    }
    known = dict(store.query(KNOWN_ALIASES, {"tenant": tenant, "keys": sorted(keys)}).result_rows)
    transactions = TransactionKeys(known)
    for event in events:
        for kind, alias in event.aliases.items():
            transactions.announce(event.correlation_id, kind, alias)

    version = _version()
    received_at = dt.datetime.now(dt.UTC)
    relinked = 0
    gone: set[str] = set()
    # Duplicates too: a retried batch may be one whose first try was stored but not acknowledged.
    changed = {transactions.transaction_of(event.correlation_id) for event in events}
    if transactions.new_aliases:
        now_aliases = list(transactions.new_aliases)
        moved_aliases = store.query(ALIASES_OF_TRANSACTIONS, {"tenant": tenant, "transactions": now_aliases})
        alias_rows = [
            [tenant, alias, kind, transactions.transaction_of(alias), announced_by, received_at, version]
            for alias, (kind, announced_by) in transactions.new_aliases.items()
        ] + [
            [*row[:3], transactions.transaction_of(row[3]), row[4], _utc(row[5]), version]
            for row in moved_aliases.result_rows
        ]
        store.insert("aliases", alias_rows, ALIAS_COLUMNS)

        earlier = store.query(EVENTS_OF_TRANSACTIONS, {"tenant": tenant, "transactions": now_aliases})
        relink_rows = []
        for row in earlier.result_rows:
            record = dict(zip(EVENT_COLUMNS, row, strict=True))
            # Its old transaction was one of the new aliases: follow that to the transaction it joined.
            record["transaction_id"] = transactions.transaction_of(record["transaction_id"])
            record["timestamp"] = _utc(record["timestamp"])
            record["received_at"] = _utc(record["received_at"])
            record["version"] = version
            relink_rows.append([record[column] for column in EVENT_COLUMNS])
            changed.add(record["transaction_id"])
        gone = set(now_aliases) - {transactions.transaction_of(alias) for alias in now_aliases}
        store.insert("events", relink_rows, EVENT_COLUMNS)
        relinked = len(relink_rows)

    rows = [
        event_row(
            event, tenant, transactions.transaction_of(event.correlation_id), source, received_at, version
        )
        for event, is_new in zip(events, new, strict=True)
        if is_new
    ]
    store.insert("events", rows, EVENT_COLUMNS)
    return StoredEvents(
        new=new,
        relinked=relinked,
        alias_conflicts=transactions.conflicts,
        changed=frozenset(changed - gone),
        gone=frozenset(gone),
    )


def store_spans(store: Store, rows: Iterable[Sequence[Any]]) -> int:
    batch = [list(row) for row in rows]
    store.insert("spans", batch, SPAN_COLUMNS)
    return len(batch)
