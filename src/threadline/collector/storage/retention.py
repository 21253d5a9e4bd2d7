"""Retention: how long each tenant's data is kept, enforced by the collector off the ingest path.

ClickHouse's TTL cannot do it: it expires rows one by one when parts merge (hours later), while a
transaction's rollup aggregates all of its events, so an expired event would stay counted in a
transaction that lives on. And a table has one TTL expression, fixed by its DDL: a tenant's days
changed in the settings would need the table rewritten. So a keeper (``RetentionKeeper``) deletes,
every ``interval``, whole transactions whose last event is older than their tenant's days, in
bounded batches: their events, rollups, process-map traces, state snapshot rows, keys and links,
all in one turn of the store's lock, so that no answer sees a transaction half gone. A transaction
with any younger event is kept whole (a transaction absorbed into another expires with it).
Technical spans go by their own start time. Each DELETE is ClickHouse's lightweight DELETE (rows
are hidden at once, reclaimed at the next merge), every value a bound parameter.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from .connection import Store, StoreUnavailable
from .keys import and_linked_into, with_current_transaction

logger = logging.getLogger("threadline.collector")

DEFAULT_TENANT = "default"  # the name, in THREADLINE_RETENTION_DAYS, of every tenant not named
# Transactions deleted per turn of the store's lock: the statements of one batch take well under a
# second on the embedded engine, so ingest and reads wait at most that.
TRANSACTIONS_PER_BATCH = 10_000

TENANTS = "SELECT DISTINCT tenant FROM transaction_rollups UNION DISTINCT SELECT DISTINCT tenant FROM spans"

# The transactions (as the API shows them: links followed) whose every event is before the cutoff.
_ROLLUPS = "SELECT transaction_id, last_activity FROM transaction_rollups WHERE tenant = {tenant:String}"
_EXPIRED = f"""
SELECT current_transaction
FROM ({with_current_transaction(_ROLLUPS)})
GROUP BY current_transaction
HAVING max(last_activity) < {{cutoff:DateTime64(6, 'UTC')}}
ORDER BY current_transaction
LIMIT {{batch:UInt32}}
"""
# Every transaction id their rows are stored under.
EXPIRED_IDS = f"SELECT DISTINCT current_transaction AS transaction_id FROM ({and_linked_into(_EXPIRED)})"

_THESE = "tenant = {tenant:String} AND transaction_id IN {transactions:Array(String)}"
# The rollups go last: they are what finds an expired transaction, so a batch cut short by an
# error is found again by the next pass.
DELETE_TRANSACTIONS = (
    f"DELETE FROM events WHERE {_THESE}",
    f"DELETE FROM workflow_traces WHERE {_THESE}",
    f"DELETE FROM transaction_states WHERE {_THESE}",
    f"DELETE FROM transaction_reconciliations WHERE {_THESE}",
    f"DELETE FROM transaction_dimensions WHERE {_THESE}",
    f"DELETE FROM transaction_exceptions WHERE {_THESE}",
    f"DELETE FROM aliases WHERE {_THESE}",
    "DELETE FROM alias_conflicts WHERE tenant = {tenant:String} "
    "AND (claimed_by IN {transactions:Array(String)} OR belongs_to IN {transactions:Array(String)})",
    "DELETE FROM transaction_links WHERE tenant = {tenant:String} "
    "AND (transaction_id IN {transactions:Array(String)} OR merged_into IN {transactions:Array(String)})",
    f"DELETE FROM transaction_rollups WHERE {_THESE}",
)
# Rows that expire by their own time, not with a transaction: technical spans by their start, the
# attribute counts (schema drift) by their hour, once it is wholly before the cutoff.
_OLD_ROWS = (
    "spans WHERE tenant = {tenant:String} AND start_time < {cutoff:DateTime64(6, 'UTC')}",
    "attribute_presence WHERE tenant = {tenant:String} "
    "AND hour < toStartOfHour({cutoff:DateTime64(6, 'UTC')})",
)
# Per kind of such rows: whether any is old (looked for first: a DELETE is a mutation of every
# part, even when no row matches), and their DELETE.
DELETE_OLD_ROWS = tuple(
    (f"SELECT count() > 0 FROM (SELECT 1 FROM {old} LIMIT 1)", f"DELETE FROM {old}") for old in _OLD_ROWS
)


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each tenant's data is kept: its own, else the default; None: kept for ever."""

    default_days: int | None = None
    days_by_tenant: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, days_by_tenant: Mapping[str, int], ttl_days: int | None) -> RetentionPolicy:
        """From THREADLINE_RETENTION_DAYS (its ``default`` entry) over THREADLINE_TTL_DAYS."""
        named = dict(days_by_tenant)
        return cls(named.pop(DEFAULT_TENANT, ttl_days), named)

    def days(self, tenant: str) -> int | None:
        return self.days_by_tenant.get(tenant, self.default_days)

    @property
    def enforced(self) -> bool:
        return self.default_days is not None or bool(self.days_by_tenant)

    def kept_since(self, tenant: str, now: dt.datetime) -> dt.datetime | None:
        """The oldest moment whose data the tenant keeps (None: everything is kept)."""
        days = self.days(tenant)
        return None if days is None else now - dt.timedelta(days=days)


def expire(store: Store, tenant: str, cutoff: dt.datetime, batch: int = TRANSACTIONS_PER_BATCH) -> int:
    """Delete the tenant's transactions whose every event is before ``cutoff``, its spans that started
    before it and its attribute counts of the hours before it; the number of transaction ids deleted
    (one absorbed into another counts too)."""
    deleted = 0
    while True:
        with store.deleting():  # no other write meets a batch half deleted
            found = store.rows(EXPIRED_IDS, {"tenant": tenant, "cutoff": cutoff, "batch": batch})
            transactions = [row["transaction_id"] for row in found]
            if transactions:
                for statement in DELETE_TRANSACTIONS:
                    store.command(statement, {"tenant": tenant, "transactions": transactions})
        deleted += len(transactions)
        if len(transactions) < batch:
            break
    for any_old, delete_old in DELETE_OLD_ROWS:
        if store.query(any_old, {"tenant": tenant, "cutoff": cutoff}).result_rows[0][0]:
            with store.writing():
                store.command(delete_old, {"tenant": tenant, "cutoff": cutoff})
    return deleted


def sweep(store: Store, policy: RetentionPolicy, now: dt.datetime) -> dict[str, int]:
    """Apply the policy to every tenant in the store; the transaction ids deleted per tenant."""
    deleted: dict[str, int] = {}
    if not store.aggregates_complete():
        return deleted  # events not yet in the rollups cannot be told expired: wait for the backfill
    for tenant in sorted(row["tenant"] for row in store.rows(TENANTS)):
        kept_since = policy.kept_since(tenant, now)
        if kept_since is not None:
            deleted[tenant] = expire(store, tenant, kept_since)
    return deleted


class RetentionKeeper:
    """Applies the policy every ``interval`` seconds, in a background thread."""

    def __init__(self, store: Store, policy: RetentionPolicy, interval: float) -> None:
        self.store = store
        self.policy = policy
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-retention", daemon=True)

    def start(self) -> RetentionKeeper:
        if self.policy.enforced and self.store.cluster:  # a DELETE goes to each node's local tables
            logger.warning("threadline: retention is not applied on a cluster yet: use table TTLs there")
        elif self.policy.enforced and self.interval > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for tenant, count in sweep(self.store, self.policy, dt.datetime.now(dt.UTC)).items():
                    if count:
                        logger.info("threadline: retention deleted %d transactions of %r", count, tenant)
            except StoreUnavailable as error:
                logger.warning("threadline: retention not applied, the store is unavailable: %s", error)
            except Exception:
                logger.exception("threadline: applying retention failed; the next pass tries again")
            self._stop.wait(self.interval)
