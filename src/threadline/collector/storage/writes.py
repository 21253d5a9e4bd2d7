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
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any

from threadline.contract.redaction import Redactor

from ..schema import BusinessEvent
from .columns import EVENT_COLUMNS, SPAN_COLUMNS, StoredEvent, event_row, span_row
from .connection import Store
from .migrations import EVENTS, SPANS, Table

logger = logging.getLogger("threadline.collector")

ALIAS_COLUMNS = ("tenant", "alias", "kind", "transaction_id", "announced_by", "first_seen", "version")

# What a batch is checked against, read once per write in four statements through sort keys: the
# key mapping (KNOWN_KEYS), the links into or out of the batch's transactions (LINKS_AROUND), every
# key those transactions' events are stored under (KEYS_OF), and those events (EVENTS_UNDER). From
# them come the duplicates (an event id counts once in its transaction, whichever of its keys it
# came under: a retry may come keyed by the transaction's other key) and the steps each transaction
# has seen (whether it had started, before an alias would join two). The same reads as subqueries
# (the stored keys twice, every link of the tenant joined) cost a 3,000-event write about 0.3 s of
# store time at 10 M events; these four about 0.13 s.
KNOWN_KEYS = """
SELECT alias, argMax(transaction_id, version) AS transaction_id, argMax(kind, version) AS kind
FROM aliases
WHERE tenant = {tenant:String} AND alias IN {keys:Array(String)}
GROUP BY alias
"""
LINKS_AROUND = """
SELECT transaction_id, merged_into
FROM transaction_links FINAL
WHERE tenant = {tenant:String}
  AND (merged_into IN {transactions:Array(String)} OR transaction_id IN {transactions:Array(String)})
"""
KEYS_OF = """
SELECT DISTINCT arrayJoin(keys) FROM transaction_rollups
WHERE tenant = {tenant:String} AND transaction_id IN {transactions:Array(String)}
"""
# Each (transaction, workflow, step) once, and apart the events whose id may be one of the batch's:
# a transaction of many events costs its steps, not its history. The ids travel as their CRC32
# (``id_hashes``): binding a string costs clickhouse-connect a Python step per character, a number
# one; a hash that collides only returns an id the caller then leaves out.
EVENTS_UNDER = """
SELECT DISTINCT if(CRC32(event_id) IN {event_hashes:Array(UInt32)}, event_id, '') AS maybe_stored,
       transaction_id, workflow, step
FROM events
WHERE tenant = {tenant:String} AND correlation_id IN {keys:Array(String)}
"""
# Where these transactions were linked, if they were (keys.LINKS): for the rare stored event whose
# transaction is none of the batch's (its key moved).
LINKS_OF = """
SELECT transaction_id, merged_into
FROM transaction_links FINAL
WHERE tenant = {tenant:String} AND transaction_id IN {transactions:Array(String)}
"""

CONFLICT_COLUMNS = (
    "tenant",
    "alias",
    "kind",
    "key_kind",
    "announced_by",
    "claimed_by",
    "belongs_to",
    "reason",
    "seen_at",
    "version",
)

LINK_COLUMNS = ("tenant", "transaction_id", "merged_into", "linked_at", "version")

# The aliases that pointed at transactions now linked into another: they follow. Each alias's latest
# row, of those that ever pointed at one of them (the transaction index narrows the mapping, then its
# sort key reads them): FINAL over the whole mapping cost each write about 170 ms at 2 M keys.
ALIASES_OF_TRANSACTIONS = """
SELECT tenant, alias, argMax(kind, version), argMax(transaction_id, version) AS current,
       argMax(announced_by, version), argMax(first_seen, version), max(version)
FROM aliases
WHERE tenant = {tenant:String}
  AND alias IN (SELECT alias FROM aliases
                WHERE tenant = {tenant:String} AND transaction_id IN {transactions:Array(String)})
GROUP BY tenant, alias
HAVING current IN {transactions:Array(String)}
"""

# The transactions events were stored under, for these keys (through the sort key).
STORED_UNDER = """
SELECT DISTINCT transaction_id
FROM events
WHERE tenant = {tenant:String} AND correlation_id IN {keys:Array(String)}
"""


@dataclass(frozen=True)
class KeyRules:
    """What linking keys needs of the workflow definitions, applied as events arrive."""

    # (workflow, step) → the kind of key the step's system sends as correlation id
    key_kinds: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # (workflow, step) of the steps that start a transaction (no prerequisite, not a failure)
    start_steps: frozenset[tuple[str, str]] = frozenset()

    def kind_of(self, event: BusinessEvent) -> str:
        """The kind of key the event's correlation id is: as the event says, else as its step declares."""
        return event.correlation_kind or self.key_kinds.get((event.workflow, event.step), "")

    def stored_key(self, event: BusinessEvent, redactor: Redactor) -> str:
        """The event's correlation id as stored: hashed when it is of a sensitive kind (a
        ``contact_email``), as an alias of that kind is, so the two still meet."""
        kind = self.kind_of(event)
        if not kind or not redactor.is_sensitive(kind):
            return event.correlation_id
        return str(redactor.redact({kind: event.correlation_id})[kind])


# Why an announced alias was not linked (``AliasConflict.reason``).
CLAIMED = "already_claimed"  # the alias already belongs to another transaction: the first claim stands
OTHER_KIND = "other_kind"  # the alias is a key of another kind that happens to have the same value
BOTH_STARTED = "both_started"  # both transactions had started: two instances, never one


@dataclass(frozen=True)
class AliasConflict:
    """An alias announced but not linked; its fields are CONFLICT_COLUMNS between tenant and seen_at."""

    alias: str
    kind: str  # as announced
    key_kind: str  # as the key was known before ("" if unknown)
    announced_by: str  # the key whose event announced it
    claimed_by: str  # the transaction that announced it
    belongs_to: str  # the transaction the alias stays with
    reason: str


@dataclass(frozen=True)
class StoredEvents:
    new: list[bool]  # per event, in order: False for a duplicate (already stored, or earlier in the batch)
    linked: int  # transactions with events stored earlier that joined another one through a new alias
    alias_conflicts: int  # aliases announced but not linked (see AliasConflict)


class TransactionKeys:
    """Which transaction each key belongs to: the union of alias announcements, first claim wins.

    An alias joins the announcing transaction unless it already belongs to another one, is known as a
    key of another kind, or is a transaction of its own that had started as the announcing one had:
    each of these is recorded as an ``AliasConflict`` instead, on both transactions.
    """

    def __init__(
        self,
        known: dict[str, str],
        kinds: Mapping[str, str] | None = None,
        steps_seen: Mapping[str, set[tuple[str, str]]] | None = None,
        start_steps: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self._transaction_of = dict(known)
        self._members: dict[str, set[str]] = defaultdict(set)
        for key, transaction in known.items():
            self._members[transaction].add(key)
        self._kinds = dict(kinds or {})
        self._steps_seen = steps_seen or {}
        self._start_steps = start_steps
        self.new_aliases: dict[str, tuple[str, str]] = {}  # alias → (kind, announced by)
        self.conflicts: list[AliasConflict] = []

    def transaction_of(self, key: str) -> str:
        return self._transaction_of.get(key, key)

    def announce(self, key: str, kind: str, alias: str) -> None:
        transaction = self.transaction_of(key)
        owner = self.transaction_of(alias)
        if owner == transaction:
            return
        known_kind = self._kinds.get(alias, "")
        if alias != owner:
            reason = CLAIMED
        elif known_kind and known_kind != kind:
            reason = OTHER_KIND
        elif self._started(transaction) and self._started(alias):
            reason = BOTH_STARTED
        else:
            # The alias may itself have been a transaction: everything that pointed at it moves over.
            for member in self._members.pop(alias, set()):
                self._transaction_of[member] = transaction
                self._members[transaction].add(member)
            self._transaction_of[alias] = transaction
            self._members[transaction].add(alias)
            self._kinds[alias] = kind
            self.new_aliases[alias] = (kind, key)
            return
        logger.warning(
            "threadline: alias %r (%s) announced by %r not linked to transaction %r: %s (it stays with %r)",
            alias,
            kind,
            key,
            transaction,
            reason,
            owner,
        )
        self.conflicts.append(AliasConflict(alias, kind, known_kind, key, transaction, owner, reason))

    def _started(self, transaction: str) -> bool:
        keys = {transaction} | self._members.get(transaction, set())
        return any(not self._start_steps.isdisjoint(self._steps_seen.get(key, ())) for key in keys)


def utc(value: dt.datetime) -> dt.datetime:
    """ClickHouse hands back naive datetimes in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def store_events(
    store: Store, tenant: str, events: Sequence[BusinessEvent], source: str, rules: KeyRules | None = None
) -> StoredEvents:
    """Store a batch of validated events for one tenant; duplicates are detected and left out.

    So every event is stored once (by event id within its transaction, wider than the table's
    key), and reads of the events need no FINAL, which at 10 M events costs seconds to merge nothing.

    Order matters for safety: links, then the key mapping, then the new events. If anything fails
    the caller does not acknowledge, the sender retries, and the retry finds what was already stored
    (by event_id) and writes what was not.
    """
    rules = rules or KeyRules()
    keys = {event.correlation_id for event in events} | {
        alias for event in events for alias in event.aliases.values()
    }
    known: dict[str, str] = {}
    kinds: dict[str, str] = {}
    mapping = store.query(KNOWN_KEYS, {"tenant": tenant, "keys": sorted(keys)}).result_rows
    for key, transaction, kind in mapping:
        known[key] = transaction
        if kind:
            kinds[key] = kind
    event_ids = {str(event.event_id) for event in events}  # set by validation
    stored = _stored_in_transactions(store, tenant, keys, known, event_ids)
    declared = {event.correlation_id: kind for event in events if (kind := rules.kind_of(event))}
    transactions = TransactionKeys(
        known,
        kinds={**declared, **kinds},  # a key keeps the kind it was first known as
        steps_seen=_steps_seen(events, stored.events, rules),
        start_steps=rules.start_steps,
    )
    for event in events:
        for kind, alias in event.aliases.items():
            transactions.announce(event.correlation_id, kind, alias)

    # An event id counts once in its transaction, whichever of the transaction's keys it comes under
    # (stored earlier, or earlier in this batch).
    seen: set[tuple[str | None, str]] = {
        (event_id, transactions.transaction_of(transaction))
        for event_id, transaction, _, _ in stored.events
        if event_id in event_ids
    }
    new = []
    for event in events:
        identity = (event.event_id, transactions.transaction_of(event.correlation_id))
        new.append(identity not in seen)
        seen.add(identity)

    version = _versions.take(1, time.time_ns() // 1000)
    received_at = dt.datetime.now(dt.UTC)
    # A correlation id whose kind is known enters the mapping as a key of its own, with that kind.
    own_keys = [
        [tenant, key, kind, transactions.transaction_of(key), key, received_at, version]
        for key, kind in declared.items()
        if key not in known and key not in transactions.new_aliases
    ]
    linked, alias_rows = (
        _link(store, tenant, transactions, stored.links, received_at, version)
        if transactions.new_aliases
        else (0, [])
    )
    # Links before the mapping: while an alias is unknown, a retry announces it again and writes
    # the same links (the latest version stands), so a failure in between leaves nothing half-linked.
    store.insert("aliases", own_keys + alias_rows, ALIAS_COLUMNS)
    store.insert(
        "alias_conflicts",
        [[tenant, *astuple(conflict), received_at, version] for conflict in transactions.conflicts],
        CONFLICT_COLUMNS,
    )

    first_seq = _arrivals.take(len(events), version * 1000)  # ties in event time keep arrival order
    rows = [
        event_row(
            StoredEvent(
                event,
                tenant,
                transactions.transaction_of(event.correlation_id),
                source,
                received_at,
                first_seq + index,
                version,
            )
        )
        for index, (event, is_new) in enumerate(zip(events, new, strict=True))
        if is_new
    ]
    insert_by_month(store, EVENTS, rows, EVENT_COLUMNS)
    return StoredEvents(new=new, linked=linked, alias_conflicts=len(transactions.conflicts))


@dataclass(frozen=True)
class _Stored:
    """What is stored of a batch's transactions (``_stored_in_transactions``)."""

    # (event id or "" for a step's other events, the transaction it belongs to now, workflow, step)
    events: list[tuple[str, str, str, str]]
    links: dict[str, str]  # transaction -> the one it is linked into, for those linked into or out of them


def _stored_in_transactions(
    store: Store, tenant: str, keys: set[str], known: Mapping[str, str], event_ids: set[str]
) -> _Stored:
    """What is stored in the transactions of ``keys`` (the mapping's ``known`` one, or the key
    itself), under any key of theirs or of a transaction linked into them: their steps, the events
    among them whose id may be one of ``event_ids``, and their links."""
    transactions = {known.get(key, key) for key in keys} | keys
    around = store.query(LINKS_AROUND, {"tenant": tenant, "transactions": sorted(transactions)}).result_rows
    linked: dict[str, str] = {transaction: into for transaction, into in around if into}
    wanted = transactions | {transaction for transaction, into in linked.items() if into in transactions}
    stored_keys = store.query(KEYS_OF, {"tenant": tenant, "transactions": sorted(wanted)}).result_rows
    under = keys | {key for (key,) in stored_keys}
    parameters = {"tenant": tenant, "keys": sorted(under), "event_hashes": id_hashes(event_ids)}
    rows = store.query(EVENTS_UNDER, parameters).result_rows
    elsewhere = {transaction for _, transaction, _, _ in rows} - transactions - linked.keys()
    if elsewhere:  # a key that moved between transactions: rare, so their links are read only then
        found = store.query(LINKS_OF, {"tenant": tenant, "transactions": sorted(elsewhere)}).result_rows
        linked |= {transaction: into for transaction, into in found if into}
    events = [
        (event_id, linked.get(transaction) or transaction, workflow, step)
        for event_id, transaction, workflow, step in rows
    ]
    return _Stored(events, linked)


def _steps_seen(
    events: Sequence[BusinessEvent], stored: Sequence[tuple[str, str, str, str]], rules: KeyRules
) -> dict[str, set[tuple[str, str]]]:
    """(workflow, step) pairs seen per key: stored ones by transaction, the batch's by correlation id.

    Needed only when a batch announces aliases and the definitions name start steps: what decides
    whether two transactions had each started before an alias would join them.
    """
    if not rules.start_steps or not any(event.aliases for event in events):
        return {}
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for _, transaction, workflow, step in stored:
        seen[transaction].add((workflow, step))
    for event in events:
        seen[event.correlation_id].add((event.workflow, event.step))
    return seen


def id_hashes(ids: Iterable[str]) -> list[int]:
    """The CRC32 of each id, as ClickHouse's ``CRC32`` computes it (both are zlib's)."""
    return sorted({zlib.crc32(value.encode()) for value in ids})


def _link(
    store: Store,
    tenant: str,
    transactions: TransactionKeys,
    links_around: Mapping[str, str],
    received_at: dt.datetime,
    version: int,
) -> tuple[int, list[list[Any]]]:
    """Write a link for each transaction the batch's new aliases absorb; return how many, and the
    key mapping's rows for the new aliases (the caller writes them after the links).

    A new alias that was a transaction of its own (events were stored under it) is absorbed: it and
    every transaction linked into it earlier now link to the announcing transaction, and the aliases
    that pointed at it follow. Mapping rows only; no event is rewritten. ``links_around``: the
    links into the batch's transactions (``_Stored.links``), the absorbed ones' among them.
    """
    absorbed = list(transactions.new_aliases)
    moved = store.query(ALIASES_OF_TRANSACTIONS, {"tenant": tenant, "transactions": absorbed}).result_rows
    alias_rows = [
        [tenant, alias, kind, transactions.transaction_of(alias), announced_by, received_at, version]
        for alias, (kind, announced_by) in transactions.new_aliases.items()
    ] + [[*row[:3], transactions.transaction_of(row[3]), row[4], utc(row[5]), version] for row in moved]
    keys = sorted(set(absorbed) | {row[1] for row in moved})
    stored_under = {row[0] for row in store.query(STORED_UNDER, {"tenant": tenant, "keys": keys}).result_rows}
    links = {alias: transactions.transaction_of(alias) for alias in absorbed if alias in stored_under}
    for earlier, into in links_around.items():  # linked earlier into an absorbed one: follows, one hop
        if into in transactions.new_aliases:
            links[earlier] = transactions.transaction_of(into)
    store.insert(
        "transaction_links",
        [[tenant, earlier, into, received_at, version] for earlier, into in links.items()],
        LINK_COLUMNS,
    )
    return len(links), alias_rows


class _Increasing:
    """Numbers that only increase across batches and threads, from the clock's where they can."""

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def take(self, count: int, at_least: int) -> int:
        """The first of ``count`` numbers never taken before, ``at_least`` if it is free."""
        with self._lock:
            first = max(at_least, self._next)
            self._next = first + count
            return first


# Each INSERT of events has a version of its own (in microseconds): the views record it per row,
# so that inserts a crash cut off can be told apart (``repair.py``). Events in arrival order: seq.
_versions = _Increasing()
_arrivals = _Increasing()


def store_spans(store: Store, spans: Iterable[Mapping[str, Any]]) -> int:
    """Spans given by column (``SPAN_COLUMNS``)."""
    batch = [span_row(span) for span in spans]
    insert_by_month(store, SPANS, batch, SPAN_COLUMNS)
    return len(batch)


def insert_by_month(
    store: Store, table: Table, rows: Sequence[Sequence[Any]], columns: Sequence[str]
) -> None:
    """Insert ``rows``, in as few INSERTs as the server's partitions-per-insert limit allows.

    A batch of a historical log can span years, so more months (partitions) than one INSERT may touch
    (``Too many partitions for single INSERT block``). The limit is a guard against a partition key
    that makes a part per row; ours is the month, fixed, so the batch is split rather than the guard
    lifted: it works under any server's settings profile, and the parts written are the same either
    way (one per month touched). A month's rows stay in one INSERT, in order, so ties in event time
    keep their arrival order. A split batch can be stored in part: then it is not acknowledged, and
    its retry stores the rest (the stored part counts as duplicates). Each INSERT after the first
    gets a version of its own, as every INSERT has.
    """
    limit = store.partitions_per_insert
    if table.month_column is None or not limit:
        store.insert(table.name, rows, columns)
        return
    at = list(columns).index(table.month_column)
    months: dict[tuple[int, int], list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        time = utc(row[at]).astimezone(dt.UTC)
        months[time.year, time.month].append(row)
    if len(months) <= limit:
        store.insert(table.name, rows, columns)
        return
    groups = list(months.values())
    version_at = list(columns).index(table.version_column) if table.version_column else None
    for start in range(0, len(groups), limit):
        part = [row for group in groups[start : start + limit] for row in group]
        if start and version_at is not None:
            version = _versions.take(1, 0)
            part = [[*row[:version_at], version, *row[version_at + 1 :]] for row in part]
        store.insert(table.name, part, columns)
