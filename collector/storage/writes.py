"""Storing business events and technical spans: deduplication and alias linking happen here.

Events are facts: each is stored once, under its own correlation id, with the transaction its key
belonged to when it arrived, and never rewritten. An event's ``aliases`` announce other keys of
the same transaction; an event that arrives with only such a key joins it, whichever arrives
first. The key mapping (``aliases``: key → transaction) says where each key belongs now; when an
alias is announced for a key that already was a transaction with events of its own, that
transaction is *linked* into the announcing one (a ``transaction_links`` row), and queries map its
events and aggregates through the link (the pattern of PostHog's distinct-id overrides). Linking
writes mapping rows only.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..schema import BusinessEvent
from .connection import Store
from .keys import with_current_transaction

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
    "seq",
    "duration_ms",
    "attempt",
    "error_kind",
    "error_message",
    "error_type",
    "error_stacktrace",
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

# Event ids already stored under these keys or any other key of their transactions (a retry may
# come keyed by the transaction's other key), found through the sort key.
STORED_WITH_IDS = """
SELECT event_id, transaction_id
FROM events
WHERE tenant = {tenant:String}
  AND event_id IN {event_ids:Array(String)}
  AND correlation_id IN (
      SELECT arrayJoin({keys:Array(String)})
      UNION ALL
      SELECT arrayJoin(keys) FROM transaction_rollups
      WHERE tenant = {tenant:String}
        AND transaction_id IN (
            SELECT arrayJoin({transactions:Array(String)})
            UNION ALL
            SELECT transaction_id FROM transaction_links FINAL
            WHERE tenant = {tenant:String} AND merged_into IN {transactions:Array(String)}
        )
  )
"""
EXISTING_EVENT_IDS = (
    f"SELECT event_id, current_transaction FROM ({with_current_transaction(STORED_WITH_IDS)})"
)

KNOWN_ALIASES = """
SELECT alias, argMax(transaction_id, version) AS transaction_id
FROM aliases
WHERE tenant = {tenant:String} AND alias IN {keys:Array(String)}
GROUP BY alias
"""

LINK_COLUMNS = ("tenant", "transaction_id", "merged_into", "linked_at", "version")

# The aliases that pointed at transactions now linked into another: they follow.
ALIASES_OF_TRANSACTIONS = f"""
SELECT {", ".join(ALIAS_COLUMNS)}
FROM aliases FINAL
WHERE tenant = {{tenant:String}} AND transaction_id IN {{transactions:Array(String)}}
"""

# The transactions events were stored under, for these keys (through the sort key).
STORED_UNDER = """
SELECT DISTINCT transaction_id
FROM events
WHERE tenant = {tenant:String} AND correlation_id IN {keys:Array(String)}
"""

# Transactions linked earlier into these ones: their links follow too, so a link is one hop.
LINKED_INTO = """
SELECT transaction_id, merged_into
FROM transaction_links FINAL
WHERE tenant = {tenant:String} AND merged_into IN {transactions:Array(String)}
"""


@dataclass(frozen=True)
class StoredEvents:
    new: list[bool]  # per event, in order: False for a duplicate (already stored, or earlier in the batch)
    linked: int  # transactions with events stored earlier that joined another one through a new alias
    alias_conflicts: int  # aliases already claimed by another transaction (the first claim stands)


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
    seq: int,
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
        seq,
        event.duration_ms,
        event.attempt,
        error.kind if error else "",
        error.message if error else "",
        (error.type or "") if error else "",
        (error.stacktrace or "") if error else "",
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

    Order matters for safety: links, then aliases, then the new events. If anything fails the
    caller does not acknowledge, the sender retries, and the retry finds what was already stored
    (by event_id) and writes what was not.
    """
    keys = {event.correlation_id for event in events} | {
        alias for event in events for alias in event.aliases.values()
    }
    known = dict(store.query(KNOWN_ALIASES, {"tenant": tenant, "keys": sorted(keys)}).result_rows)
    transactions = TransactionKeys(known)
    for event in events:
        for kind, alias in event.aliases.items():
            transactions.announce(event.correlation_id, kind, alias)

    # An event id counts once in its transaction, whichever of the transaction's keys it comes under
    # (stored earlier, or earlier in this batch).
    parameters = {
        "tenant": tenant,
        "keys": sorted(keys),
        "transactions": sorted(
            {known.get(key, key) for key in keys} | {transactions.transaction_of(key) for key in keys}
        ),
        "event_ids": sorted({event.event_id for event in events}),  # type: ignore[type-var]
    }
    seen = {
        (event_id, transactions.transaction_of(transaction))
        for event_id, transaction in store.query(EXISTING_EVENT_IDS, parameters).result_rows
    }
    new = []
    for event in events:
        identity = (event.event_id, transactions.transaction_of(event.correlation_id))
        new.append(identity not in seen)
        seen.add(identity)  # type: ignore[arg-type]

    version = _version()
    received_at = dt.datetime.now(dt.UTC)
    linked = 0
    if transactions.new_aliases:
        linked = _link(store, tenant, transactions, received_at, version)

    first_seq = _arrivals.take(len(events), version)  # ties in event time keep arrival order
    rows = [
        event_row(
            event,
            tenant,
            transactions.transaction_of(event.correlation_id),
            source,
            received_at,
            first_seq + index,
            version,
        )
        for index, (event, is_new) in enumerate(zip(events, new, strict=True))
        if is_new
    ]
    store.insert("events", rows, EVENT_COLUMNS)
    return StoredEvents(new=new, linked=linked, alias_conflicts=transactions.conflicts)


def _link(
    store: Store, tenant: str, transactions: TransactionKeys, received_at: dt.datetime, version: int
) -> int:
    """Write the key mapping for the batch's new aliases, and a link for each transaction they absorb.

    A new alias that was a transaction of its own (events were stored under it) is absorbed: it and
    every transaction linked into it earlier now link to the announcing transaction, and the aliases
    that pointed at it follow. Mapping rows only; no event is rewritten.
    """
    absorbed = list(transactions.new_aliases)
    moved = store.query(ALIASES_OF_TRANSACTIONS, {"tenant": tenant, "transactions": absorbed}).result_rows
    alias_rows = [
        [tenant, alias, kind, transactions.transaction_of(alias), announced_by, received_at, version]
        for alias, (kind, announced_by) in transactions.new_aliases.items()
    ] + [[*row[:3], transactions.transaction_of(row[3]), row[4], _utc(row[5]), version] for row in moved]
    keys = sorted(set(absorbed) | {row[1] for row in moved})
    stored_under = {row[0] for row in store.query(STORED_UNDER, {"tenant": tenant, "keys": keys}).result_rows}
    links = {alias: transactions.transaction_of(alias) for alias in absorbed if alias in stored_under}
    for earlier, into in store.query(LINKED_INTO, {"tenant": tenant, "transactions": absorbed}).result_rows:
        links[earlier] = transactions.transaction_of(into)
    # Links before the mapping: while an alias is unknown, a retry announces it again and writes
    # the same links (the latest version stands), so a failure in between leaves nothing half-linked.
    store.insert(
        "transaction_links",
        [[tenant, earlier, into, received_at, version] for earlier, into in links.items()],
        LINK_COLUMNS,
    )
    store.insert("aliases", alias_rows, ALIAS_COLUMNS)
    return len(links)


class _Arrivals:
    """Arrival order across batches: increasing, from the clock's microseconds where it can."""

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def take(self, count: int, version: int) -> int:
        with self._lock:
            first = max(version * 1000, self._next)
            self._next = first + count
            return first


_arrivals = _Arrivals()


def store_spans(store: Store, rows: Iterable[Sequence[Any]]) -> int:
    batch = [list(row) for row in rows]
    store.insert("spans", batch, SPAN_COLUMNS)
    return len(batch)
