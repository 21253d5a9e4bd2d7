"""``transaction_state``: each transaction's derived state, stored, so queries need not re-derive it.

Deriving state means aggregating every event of every transaction (``state.DERIVED``); at millions
of events that is seconds per query. This table holds DERIVED's columns per transaction, the
part of the state that does not depend on the moment asked about; ``state.summary_sql`` adds the
rest (stuck, the SLA clock of open transactions, operators' resolutions) at query time.

It is kept exact, not eventually consistent:
- the writer reports which transactions each batch changed (new events, or events re-linked to
  another transaction through an alias) before it acknowledges the batch; those are refreshed
  after the batch, and any query that finds some still pending refreshes them first, so a query
  always sees what was acknowledged;
- a transaction whose events were all re-linked elsewhere gets a tombstone (``deleted``);
- the rows depend on the workflow definitions, so at start and after each reload the whole table
  is rebuilt in the background; until it is done, queries derive state from the events as before;
- a stored row holds every event of its transaction, so it answers only for an ``as_of`` at or after
  its last event; the state of the other transactions is derived from their events.

With several collectors on one ClickHouse server, each refreshes what it wrote: another
collector's batch shows up in this one's queries once that collector has refreshed it (normally
within the same second).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable

from .state import DERIVED, DERIVED_COLUMNS, FAR_FUTURE, PARAMETERS, summary_parameters, summary_sql
from .storage import Store
from .storage.connection import StoreUnavailable
from .storage.writes import OF_TRANSACTIONS
from .workflows import Workflows

logger = logging.getLogger("threadline.collector")

# The server's clock versions each row, so a later statement always wins, whoever runs it.
INSERT_DERIVED = """
INSERT INTO transaction_state ({columns}, tenant, deleted, version)
{parameters}
SELECT {columns}, {{tenant:String}}, false, toUnixTimestamp64Micro(now64(6))
FROM ({derived})
"""

# One slice of all transactions, for a rebuild that never holds every transaction in memory at once.
SLICE = "AND cityHash64(transaction_id) % {slices:UInt32} = {slice:UInt32}"

TOMBSTONES = """
INSERT INTO transaction_state (tenant, transaction_id, deleted, version)
SELECT {tenant:String}, arrayJoin({ids:Array(String)}), true, toUnixTimestamp64Micro(now64(6))
"""

# Transactions with events after as_of: usually none when as_of is now (then the query that
# derives their state from the events, costly to plan even when it reads nothing, is left out).
LATE_COUNT = """
SELECT count() FROM transaction_state FINAL
WHERE tenant = {tenant:String} AND NOT deleted AND last_activity > {as_of:DateTime64(6, 'UTC')}
"""

TENANTS_AND_EVENTS = "SELECT tenant, count() FROM events GROUP BY tenant"

SERVER_NOW = "SELECT toUnixTimestamp64Micro(now64(6))"

# After a rebuild: a row it did not rewrite is of a transaction without events any more (re-linked
# while a refresh was lost to a crash, or expired by the TTL).
LEFT_OVER = """
INSERT INTO transaction_state (tenant, transaction_id, deleted, version)
SELECT tenant, transaction_id, true, toUnixTimestamp64Micro(now64(6))
FROM transaction_state FINAL
WHERE NOT deleted AND version < {rebuild_started:UInt64}
"""

EVENTS_PER_SLICE = 250_000  # bounds the rebuild's memory (about 300 MiB at this size); slices cost little
IDS_PER_REFRESH = 5_000


def _insert_sql(scope: str) -> str:
    return INSERT_DERIVED.format(
        columns=", ".join(DERIVED_COLUMNS), parameters=PARAMETERS, derived=DERIVED.format(scope=scope)
    )


class TransactionStateTable:
    """Keeps ``transaction_state`` current for the definitions in use, and says when it is."""

    def __init__(self, store: Store, workflows: Workflows) -> None:
        self.store = store
        self._lock = threading.Lock()  # guards the fields below
        self._refreshing = threading.Lock()  # one refresh at a time; a query waits for it to finish
        self._changed: dict[str, set[str]] = defaultdict(set)
        self._gone: dict[str, set[str]] = defaultdict(set)
        self._target = workflows  # the definitions the table is (being) built for
        self._built: Workflows | None = None  # the definitions every row reflects, once rebuilt
        self._generation = 0
        self._rebuilding: threading.Thread | None = None

    # --- what the writer tells it ---------------------------------------------------------------

    def changed(self, tenant: str, transactions: Iterable[str], gone: Iterable[str] = ()) -> None:
        """These transactions changed (and these no longer exist); called before acknowledging."""
        gone = set(gone)
        with self._lock:
            self._changed[tenant].update(set(transactions) - gone)
            self._gone[tenant].update(gone)
            for transaction in gone:
                self._changed[tenant].discard(transaction)

    def refresh(self) -> None:
        """Store the state of every transaction changed since the last refresh."""
        with self._refreshing:
            with self._lock:
                changed, self._changed = self._changed, defaultdict(set)
                gone, self._gone = self._gone, defaultdict(set)
                workflows = self._target
            try:
                for tenant, ids in changed.items():
                    ordered = sorted(ids)
                    for start in range(0, len(ordered), IDS_PER_REFRESH):
                        some = ordered[start : start + IDS_PER_REFRESH]
                        self.store.command(
                            _insert_sql(OF_TRANSACTIONS),
                            summary_parameters(workflows, tenant, FAR_FUTURE, transactions=some),
                        )
                for tenant, ids in gone.items():
                    if ids:
                        self.store.command(TOMBSTONES, {"tenant": tenant, "ids": sorted(ids)})
            except BaseException:
                with self._lock:  # nothing is forgotten: the next refresh tries again
                    for tenant, ids in changed.items():
                        self._changed[tenant] |= ids
                    for tenant, ids in gone.items():
                        self._gone[tenant] |= ids
                raise

    # --- what queries ask ----------------------------------------------------------------------

    def current(self, workflows: Workflows) -> bool:
        """Whether queries with these definitions may read the table (after refreshing what changed).

        Definitions other than the ones the table is built for (a request that began before a
        reload) read the events; a rebuild that failed (the store was away) is started again.
        """
        with self._lock:
            if workflows is not self._target:
                return False
            built = self._built is workflows
            if not built and not self._is_rebuilding():
                self._start_rebuild(workflows)
        if not built:
            return False
        self.refresh()  # also waits for one the writer has under way: it may hold what was acknowledged
        return True

    @property
    def ready(self) -> bool:
        """The table reflects the definitions it was last asked for."""
        with self._lock:
            return self._built is self._target

    # --- rebuilding -----------------------------------------------------------------------------

    def start(self) -> TransactionStateTable:
        with self._lock:
            self._start_rebuild(self._target)
        return self

    def rebuild(self, workflows: Workflows) -> None:
        """Rebuild for new definitions (a reload); queries read the events until it is done."""
        with self._lock:
            self._start_rebuild(workflows)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the rebuild (starting it again if it failed); True once the table is ready."""
        with self._lock:
            if self._built is not self._target and not self._is_rebuilding():
                self._start_rebuild(self._target)
            thread = self._rebuilding
        if thread is not None:
            thread.join(timeout)
        return self.ready

    def _is_rebuilding(self) -> bool:
        return self._rebuilding is not None and self._rebuilding.is_alive()

    def _start_rebuild(self, workflows: Workflows) -> None:
        self._generation += 1
        self._target = workflows
        self._built = None
        self._rebuilding = threading.Thread(
            target=self._rebuild,
            args=(workflows, self._generation),
            name="threadline-state-rebuild",
            daemon=True,
        )
        self._rebuilding.start()

    def _rebuild(self, workflows: Workflows, generation: int) -> None:
        try:
            started = self.store.query(SERVER_NOW).result_rows[0][0]
            for tenant, events in self.store.query(TENANTS_AND_EVENTS).result_rows:
                slices = max(1, -(-int(events) // EVENTS_PER_SLICE))
                for part in range(slices):
                    if self._generation != generation:
                        return  # definitions changed again: a newer rebuild has started
                    self.store.command(
                        _insert_sql(SLICE),
                        summary_parameters(workflows, tenant, FAR_FUTURE, slices=slices, slice=part),
                    )
            if self._generation == generation:
                self.store.command(LEFT_OVER, {"rebuild_started": started})
        except StoreUnavailable as error:
            logger.warning("threadline: transaction state not rebuilt (%s); will try again", error)
            return
        except Exception:
            logger.exception("threadline: transaction state not rebuilt; queries read the events")
            return
        with self._lock:
            if self._generation == generation:
                self._built = workflows
                logger.info("threadline: transaction state rebuilt for %d workflows", len(workflows))


def stored_state_current(store: Store, workflows: Workflows) -> bool:
    """Whether ``transaction_state`` holds every acknowledged event for these definitions."""
    table = store.state_table
    return table is not None and table.current(workflows)


def state_sql(store: Store, workflows: Workflows, tenant: str, as_of: dt.datetime) -> str:
    """``state.summary_sql`` of every transaction, reading ``transaction_state`` whenever it is current."""
    if not stored_state_current(store, workflows):
        return summary_sql()
    late = store.query(LATE_COUNT, {"tenant": tenant, "as_of": as_of}).result_rows[0][0]
    return summary_sql(materialized=True, with_late=late > 0)
