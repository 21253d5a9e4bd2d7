"""The state snapshot: what the rules derive for every transaction, kept up to date off the ingest path.

Deriving the state of millions of transactions again on every page read costs seconds of CPU: a few
dashboards queued behind each other for minutes (issue 16). Almost none of those transactions
changed since the last read. So a keeper (a thread of the collector, ``StateKeeper``) keeps
``transaction_states``: every few seconds it derives again the transactions an event was received
for since its last pass (all of them on its first pass, or when the definitions changed), and
records per tenant up to when the snapshot is complete (``state_marks``). A read (``summary``) takes
the snapshot's rows and derives only the transactions changed since that mark itself
(``rules.summary_sql(snapshot=True)``): the answer never lags ingest, and is the answer the rules
give from the rollups (a test holds the two paths to each other). What depends on the moment asked
about (stuck, the SLA clock) and the operators' resolutions are applied at read time, to both."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from ..cursors import AFTER_EVERY_ID
from ..metrics import TENANT_LABEL
from ..schema import EARLIEST, LATEST
from ..storage import CallerGone, Store, StoreUnavailable
from ..storage.writes import utc
from ..workflows import Workflows
from . import transaction_exceptions, transaction_facts
from .rules import (
    CHANGED_FACTS,
    DERIVED,
    DERIVED_COLUMNS,
    PARAMETERS,
    ROLLUP_FACTS,
    WorkflowParameters,
    summary_sql,
)

logger = logging.getLogger("threadline.collector")

# What was received this long before a pass began counts as changed after it: a ClickHouse server
# takes inserts from several collectors (each stamps its events received before storing them) and
# shows them on every node a moment later. One embedded store needs none: a pass's mark is where
# it began, or, were a write under way then, where that write began (``Store.settled_until``), so
# the events that write stamps come after the mark.
SERVER_MARGIN = dt.timedelta(seconds=30)


def margin(store: Store) -> dt.timedelta:
    return dt.timedelta(0) if store.embedded else SERVER_MARGIN


MARK = """
SELECT definitions, covered_until FROM state_marks FINAL WHERE tenant = {tenant:String}
"""
SET_MARK = """
INSERT INTO state_marks (tenant, definitions, covered_until, version)
VALUES ({tenant:String}, {definitions:String}, {covered_until:DateTime64(6, 'UTC')}, {version:UInt64})
"""
TENANTS = "SELECT DISTINCT tenant FROM transaction_rollups"

# A pass over every transaction is cut into statements that each derive about
# TRANSACTIONS_PER_SLICE of them, through the sort key, so reads and writes get the store in between.
# The boundaries come from a sample of the ids.
SLICE = "transaction_id >= {low:String} AND transaction_id < {high:String}"
TRANSACTIONS_PER_SLICE = 250_000
SAMPLE_EVERY = 256
ID_SAMPLE = f"""
SELECT transaction_id FROM transaction_rollups
WHERE tenant = {{tenant:String}} AND cityHash64(transaction_id) % {SAMPLE_EVERY} = 0
ORDER BY transaction_id
"""

_COLUMNS = ", ".join(DERIVED_COLUMNS)
_KEEP = f"""
INSERT INTO transaction_states (tenant, {_COLUMNS}, version)
{PARAMETERS}
SELECT {{tenant:String}}, {_COLUMNS}, {{version:UInt64}}
FROM ({{derived}})
"""
# Keep the transactions changed since the mark (every stored event counts: as of the far future).
KEEP_CHANGED = _KEEP.replace("{derived}", DERIVED.format(facts=CHANGED_FACTS.replace("{scope}", "")))
# Keep one slice of every transaction.
KEEP_SLICE = _KEEP.replace(
    "{derived}",
    DERIVED.format(facts=ROLLUP_FACTS.replace("{open_only}", "").replace("{scope}", f"AND ({SLICE})")),
)


# Whether a read must derive any transaction itself: one received an event since the snapshot's mark
# (ingest is under way), or has an event after as_of (as_of in the past). Neither, usually: the read
# is then the snapshot's rows alone. Two narrow columns read, about 20 ms at 10 M events, against
# the 0.3-0.5 s the analyzer takes to plan the two parts (issue 16).
PENDING = """
SELECT
    (SELECT count() > 0 FROM events
     WHERE tenant = {tenant:String} AND received_at >= {snapshot_since:DateTime64(6, 'UTC')}) AS changed,
    (SELECT count() > 0 FROM transaction_rollups
     WHERE tenant = {tenant:String} AND last_activity > {as_of:DateTime64(6, 'UTC')}) AS late
"""


# The same for one transaction (a lookup): no event under its keys received since the mark, none
# after as_of. Through the events' sort key: a few rows.
UNCHANGED = """
SELECT count() = 0 AS unchanged FROM events
WHERE tenant = {tenant:String} AND correlation_id IN {keys:Array(String)}
  AND (received_at >= {snapshot_since:DateTime64(6, 'UTC')} OR timestamp > {as_of:DateTime64(6, 'UTC')})
"""


@dataclass(frozen=True)
class Mark:
    """The snapshot of a tenant holds every transaction as ``definitions`` derive it from every
    event received before ``covered_until``."""

    definitions: str
    covered_until: dt.datetime


def slices(store: Store, tenant: str) -> list[dict[str, str]]:
    """The slices a pass over every transaction of the tenant is cut into, as bound parameters."""
    sample = [row["transaction_id"] for row in store.rows(ID_SAMPLE, {"tenant": tenant})]
    count = max(1, round(len(sample) * SAMPLE_EVERY / TRANSACTIONS_PER_SLICE))
    bounds = ["", *(sample[len(sample) * part // count] for part in range(1, count)), AFTER_EVERY_ID]
    return [{"low": low, "high": high} for low, high in itertools.pairwise(bounds)]


def read_parts(store: Store, workflows: Workflows, tenant: str) -> list[tuple[str, dict[str, str]]]:
    """How a read over every transaction (the alert gauges, a first evaluation) is cut, as (scope,
    bound parameters): whole when the snapshot is kept, for only what changed since its mark is then
    derived (one statement planned, not one per slice: each took 1-1.5 s at 10 M events under load);
    else in ``slices``, which bound what one statement derives."""
    if readable_mark(store, tenant, WorkflowParameters.of(workflows).digest) is not None:
        return [("", {})]
    return [(SLICE, part) for part in slices(store, tenant)]


def read_mark(store: Store, tenant: str) -> Mark | None:
    rows = store.rows(MARK, {"tenant": tenant})
    if not rows or not rows[0]["definitions"]:
        return None
    return Mark(rows[0]["definitions"], utc(rows[0]["covered_until"]))


def _mark_key(tenant: str) -> tuple[str, str]:
    return ("state_mark", tenant)


def readable_mark(store: Store, tenant: str, digest: str) -> Mark | None:
    """The tenant's mark when its snapshot may be read with the definitions of ``digest`` (derived
    with them, the aggregates complete); remembered between calls (``Store.remembered``)."""
    if not store.aggregates_complete():
        return None
    mark = store.remembered(_mark_key(tenant), lambda: read_mark(store, tenant))
    return mark if mark is not None and mark.definitions == digest else None


def _set_mark(store: Store, tenant: str, definitions: str, covered_until: dt.datetime) -> None:
    store.command(
        SET_MARK,
        {
            "tenant": tenant,
            "definitions": definitions,
            "covered_until": covered_until,
            "version": time.time_ns() // 1000,
        },
    )
    store.forget(_mark_key(tenant))


@dataclass(frozen=True)
class StateRead:
    """How a read takes every transaction's state (``read``): its SQL and parameters; ``kept``: from
    the snapshot, complete up to ``snapshot_since`` (bound); ``changed``: events were received since
    then; ``late``: some transaction has an event after as_of."""

    sql: str
    parameters: dict[str, Any]
    kept: bool
    changed: bool
    late: bool


def read(
    store: Store,
    workflows: Workflows,
    tenant: str,
    as_of: dt.datetime,
    open_only: bool = False,
    scope: str = "",
    state_scope: str | None = None,
    derive_changed: bool = True,
    keyed: str = "",
    reconciled: bool = True,
    pending: tuple[bool, bool] | None = None,
    **extra: Any,
) -> StateRead:
    """The state of every transaction of ``tenant`` as of ``as_of`` (``rules.summary_sql``), and its
    parameters: from the snapshot wherever it holds these definitions, else derived from the rollups.

    ``scope`` is a condition on ``transaction_id`` and ``last_activity``, columns of both; one that
    reads the rollups' own columns has its equivalent over the state's columns in ``state_scope``,
    for the snapshot (without one, it is derived from the rollups).

    ``derive_changed`` False: the transactions changed since the snapshot's mark are left out, not
    derived (``rules.summary_sql``): what the snapshot held at its mark, as of ``as_of``. ``keyed``:
    ``rules.summary_sql``'s, a condition on ``transaction_id`` alone that narrows every table read;
    ``reconciled`` False: without what the state keeper found wrong across systems (``summary_sql``).
    ``pending``: what a read of the same ``as_of`` just found (its ``changed``, ``late``), not asked
    again: a later mark covers more, so nothing received since the earlier one is none since it.
    """
    definitions = WorkflowParameters.of(workflows)
    parameters = {**definitions.values, "tenant": tenant, "as_of": as_of, **extra}
    complete = store.aggregates_complete()
    mark = readable_mark(store, tenant, definitions.digest) if state_scope != "" else None
    changed, late = True, True
    changed_scope = ""
    if mark is not None:
        parameters["snapshot_since"] = mark.covered_until - margin(store)
        changed_scope = scope if state_scope is None else ""  # over columns of the rollups too
        scope = scope if state_scope is None else state_scope
        if pending is None:
            found = store.rows(PENDING, parameters)[0]
            pending = bool(found["changed"]), bool(found["late"])
        changed, late = pending
    sql = summary_sql(
        aggregates_complete=complete,
        open_only=open_only,
        scope=scope,
        snapshot=mark is not None,
        changed=changed,
        late=late,
        changed_scope=changed_scope,
        derive_changed=derive_changed,
        keyed=keyed,
        reconciled=reconciled,
    )
    return StateRead(sql, parameters, mark is not None, changed, late)


def summary(
    store: Store, workflows: Workflows, tenant: str, as_of: dt.datetime, **options: Any
) -> tuple[str, dict[str, Any]]:
    """``read``'s SQL and parameters (``options``: ``read``'s)."""
    state = read(store, workflows, tenant, as_of, **options)
    return state.sql, state.parameters


def unchanged(store: Store, workflows: Workflows, tenant: str, keys: list[str], as_of: dt.datetime) -> bool:
    """Whether the snapshot's row of the transaction under ``keys`` is its state as of ``as_of``
    (``summary_sql(one_transaction=True, snapshot=True)``): no event of it received since the mark,
    none after ``as_of``; else it is derived from its events."""
    mark = readable_mark(store, tenant, WorkflowParameters.of(workflows).digest)
    if mark is None:
        return False
    since = mark.covered_until - margin(store)
    found = store.rows(UNCHANGED, {"tenant": tenant, "keys": keys, "snapshot_since": since, "as_of": as_of})
    return bool(found[0]["unchanged"])


def keep(
    store: Store,
    workflows: Workflows,
    tenant: str,
    now: dt.datetime | None = None,
    changed_only: bool = False,
) -> int:
    """Bring the tenant's snapshot up to date with every event received before ``now``; the number
    of statements it took (each derives the changed transactions, or a slice of all of them).
    ``changed_only``: nothing (0) when that takes deriving every transaction."""
    began = now or store.settled_until()
    definitions = WorkflowParameters.of(workflows)
    mark = read_mark(store, tenant) if store.aggregates_complete() else None
    base = {**definitions.values, "tenant": tenant, "as_of": LATEST, "version": time.time_ns() // 1000}
    if changed_only and (mark is None or mark.definitions != definitions.digest):
        return 0
    if mark is not None and mark.definitions == definitions.digest:
        since = mark.covered_until - margin(store)
        store.command(KEEP_CHANGED, {**base, "snapshot_since": since})
        transaction_facts.keep_changed(store, workflows, tenant, since)
        transaction_exceptions.keep_changed(store, tenant, since)
        statements = 1
    else:
        if mark is not None:  # derived with other definitions: not read again until derived anew
            _set_mark(store, tenant, "", EARLIEST)
        parts = slices(store, tenant) if store.aggregates_complete() else []
        for part in parts:
            store.command(KEEP_SLICE, {**base, **part})
        statements = len(parts)
        if not parts:
            return 0  # nothing to keep yet, or the aggregates are still being filled
        transaction_facts.keep_all(store, workflows, tenant, parts)
        transaction_exceptions.keep_all(store, tenant)
    _set_mark(store, tenant, definitions.digest, began)
    return statements


# The keeper's passes take at most this share of the time: under steady ingest every pass finds
# something changed, and a pass has a fixed cost (planning the state statement, ~0.5 s) beside what
# it derives, so passes back to back would hold the store and a core from ingest most of the time.
# Spacing them lets each derive more at once; reads catch up what is not kept yet (``catch_up``).
KEEPER_SHARE = 0.25
# Ingest first: while batches keep arriving, a pass waits for a pause in them (no write for
# ``INGEST_PAUSE_S``), at most ``INGEST_FIRST_MAX_S`` past its time. A burst then keeps every core for
# itself (the ingest bench's 4 clients: 0.65 of the raw insert without the keeper's passes, 0.46-0.52
# with them) and the passes after it derive the burst at once; under ingest that never pauses, a pass
# still runs every ``INGEST_FIRST_MAX_S``. Reads lose nothing: each catches up itself (``catch_up``).
INGEST_PAUSE_S = 0.25
INGEST_FIRST_MAX_S = 10.0

# How long a read waits for a pass under way before it derives what changed itself (a first pass
# over every transaction takes minutes at 10 M events; a pass over what changed, about half a second).
CATCH_UP_WAIT_S = 2.0


def pause_after(took: float, interval: float) -> float:
    """Seconds the keeper waits after a pass that took ``took``: the rest of ``interval``, and long
    enough that its passes take at most ``KEEPER_SHARE`` of the time."""
    return max(interval - took, took * (1 / KEEPER_SHARE - 1), 0.1 * interval)


class StateKeeper:
    """Keeps every tenant's snapshot up to date, every ``interval`` seconds (less often when its
    passes are slow: ``pause_after``), in a background thread whose statements wait for the
    dashboard's reads (``Store.background``); and, before a read (``catch_up``), with every write
    this collector acknowledged until then."""

    def __init__(
        self,
        store: Store,
        workflows: Callable[[], Workflows],
        interval: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.interval = interval
        self.covered_until = Gauge(
            "threadline_state_snapshot_covered_until_seconds",
            "Unix time up to which the state snapshot holds every received event, per tenant "
            "(reads derive what came since themselves: a lag costs read time, never correctness)",
            [TENANT_LABEL],
            registry=registry,
        )
        self._seen: tuple[str, int] | None = None  # the definitions and the store's writes of the last pass
        # Per tenant: one pass at a time, the background's or a read's; the definitions and the count
        # of the store's writes (``Store.writes``) its latest pass covers.
        self._passing: dict[str, threading.Lock] = {}
        self._covered: dict[str, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-state-keeper", daemon=True)

    def start(self) -> StateKeeper:
        if self.interval > 0:
            self._thread.start()
        else:
            logger.warning("threadline: THREADLINE_STATE_INTERVAL=0: every read derives every state again")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def keep_every_tenant(self) -> None:
        workflows = self.workflows()
        # Nothing written here and the same definitions since the last pass: nothing to keep (a pass
        # with nothing to derive still reads every event's arrival time). Another collector on the
        # same server keeps what it writes itself.
        seen = (WorkflowParameters.of(workflows).digest, self.store.writes)
        if seen == self._seen:
            return
        kept_every_tenant = True
        for tenant in sorted(row["tenant"] for row in self.store.rows(TENANTS)):
            if self._stop.is_set():
                return
            if self._covers(tenant, seen):
                continue  # a read's catch-up kept it since
            started = time.monotonic()
            with self._passing.setdefault(tenant, threading.Lock()):
                statements = self._keep(workflows, tenant)
            kept_every_tenant = kept_every_tenant and statements > 0
            if statements > 1:
                logger.info(
                    "threadline: state snapshot of tenant %r derived in %d slices, %.1f s",
                    tenant,
                    statements,
                    time.monotonic() - started,
                )
        if kept_every_tenant:  # else (an error, the aggregates still being filled) the next pass tries again
            self._seen = seen

    def catch_up(self, tenant: str) -> None:
        """Before a read of the tenant's state: keep its snapshot up to every write this collector
        acknowledged before now, so that the read is the snapshot's rows alone (``summary``), and
        concurrent reads share one pass instead of each deriving what changed. It gives up (the read
        derives what changed itself, as it would anyway) when a pass over every transaction is due or
        under way, without waiting for it."""
        workflows = self.workflows()
        wanted = (WorkflowParameters.of(workflows).digest, self.store.writes)
        if self.interval <= 0 or self._covers(tenant, wanted):
            return
        if readable_mark(self.store, tenant, wanted[0]) is None:
            return  # a pass over every transaction is due (or under way: it cleared the mark first)
        passing = self._passing.setdefault(tenant, threading.Lock())
        if not passing.acquire(timeout=CATCH_UP_WAIT_S):
            return
        try:
            if not self._covers(tenant, wanted):  # the pass it waited for may have covered it
                self._keep(workflows, tenant, changed_only=True)
        except (StoreUnavailable, CallerGone):
            raise  # the read's time limit, its caller gone, the store gone: the read meets them too
        except Exception:
            logger.exception("threadline: catching the state snapshot up failed; the read derives the state")
        finally:
            passing.release()

    def _after_ingest_pauses(self, deadline: float) -> None:
        """Wait until no ingest write for ``INGEST_PAUSE_S`` (see ``INGEST_FIRST_MAX_S``), or the deadline."""
        seen = self.store.writes
        while time.monotonic() < deadline and not self._stop.wait(INGEST_PAUSE_S):
            if self.store.writes == seen:
                return
            seen = self.store.writes

    def _covers(self, tenant: str, wanted: tuple[str, int]) -> bool:
        covered = self._covered.get(tenant)
        return covered is not None and covered[0] == wanted[0] and covered[1] >= wanted[1]

    def _keep(self, workflows: Workflows, tenant: str, changed_only: bool = False) -> int:
        writes = self.store.writes  # counted before the pass begins: each one stored before ``began``
        began = self.store.settled_until()
        with Store.beside_ingest():  # a read's catch-up, too, waits for no batch
            statements = keep(self.store, workflows, tenant, began, changed_only)
        if statements:
            self._covered[tenant] = (WorkflowParameters.of(workflows).digest, writes)
            self.covered_until.labels(tenant).set(began.timestamp())
        return statements

    def _run(self) -> None:
        while not self._stop.is_set():
            self._after_ingest_pauses(time.monotonic() + INGEST_FIRST_MAX_S)
            started = time.monotonic()
            try:
                with Store.background():
                    self.keep_every_tenant()
            except StoreUnavailable as error:
                logger.warning("threadline: state snapshot not kept, the store is unavailable: %s", error)
            except Exception:
                logger.exception("threadline: keeping the state snapshot failed; reads derive the state")
            self._stop.wait(pause_after(time.monotonic() - started, self.interval))
