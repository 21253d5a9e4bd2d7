"""Aggregates a crash cut off: found and written at the next start.

ClickHouse does not write an INSERT's events and its materialized views' rows in one transaction.
A collector killed between the two can leave events stored whose aggregates (``transaction_rollups``,
``workflow_traces``) are not; the sender, never acknowledged, sends them again, and ingest leaves them
out as already stored. The queue, the overview and the process map
would then miss them for good (a kill mid-stream lost 103 of 1,500 transactions from the queue).

Each view row records which inserts it holds (``aggregates.BATCHES``: the ``version`` every INSERT
has of its own). At start, before ingest, the collector compares the inserts of the last minutes
before the store's latest with what each view holds, and aggregates what is missing with the views'
own expressions. Inserts already aggregated are never counted twice, so the repair may run any
number of times. On a ClickHouse server other collectors may be mid-insert: there it runs once the
inserts begun before this start have had time to finish (``GRACE_S``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from . import aggregates
from .connection import Store, StoreUnavailable
from .migrations import BATCHES_RECORDED, TRANSACTION_ROLLUPS, WORKFLOW_TRACES

logger = logging.getLogger("threadline.collector")

# How far before the latest insert an insert may have been cut off: longer than any INSERT takes.
WINDOW_US = 10 * 60 * 1_000_000
# On a server: how long an insert begun before the start may still take; and how far a collector's
# clock (which stamps versions) may be from the server's (which stamped the migration).
GRACE_S = 60.0
SERVER_SKEW_US = 60 * 1_000_000

LATEST_INSERT = "SELECT max(version) FROM events"
BATCHES_SINCE = """
SELECT toUnixTimestamp64Micro(min(applied_at)) FROM schema_migrations WHERE version = {version:UInt32}
"""

# The inserts in doubt: by their version.
_RECENT = "version > {since:UInt64} AND version < {until:UInt64}"


@dataclass(frozen=True)
class View:
    table: str
    group_by: str
    aggregated: tuple[aggregates.Aggregate, ...]

    @property
    def _missing(self) -> str:
        """The recent events whose insert this view's rows do not hold."""
        return f"""
FROM events
WHERE {_RECENT}
  AND ({self.group_by}, version) NOT IN (
    SELECT {self.group_by}, arrayJoin(batches) FROM {self.table}
    WHERE ({self.group_by}) IN (SELECT {self.group_by} FROM events WHERE {_RECENT})
  )"""

    @property
    def count_missing(self) -> str:
        return f"SELECT count(){self._missing}"

    @property
    def fill(self) -> str:
        columns = (*self.aggregated, aggregates.BATCHES)
        return f"""
INSERT INTO {self.table} ({self.group_by}, {aggregates.names(columns)})
SELECT {self.group_by}, {aggregates.aggregated(columns)}{self._missing}
GROUP BY {self.group_by}"""


VIEWS = (
    View(TRANSACTION_ROLLUPS.name, aggregates.ROLLUP_BY, aggregates.ROLLUP),
    View(WORKFLOW_TRACES.name, aggregates.TRACE_BY, aggregates.TRACE),
)


def repair(store: Store, until_us: int) -> int:
    """Aggregate the events stored before ``until_us`` (a version) that a view lacks; how many."""
    latest = store.query(LATEST_INSERT).result_rows[0][0]
    recorded = store.query(BATCHES_SINCE, {"version": BATCHES_RECORDED}).result_rows[0][0]
    if not latest or not recorded:
        return 0
    # Inserts before the views recorded theirs hold no batches: they cannot be told apart.
    floor = recorded + (0 if store.embedded else SERVER_SKEW_US)
    parameters = {"since": max(floor, latest - WINDOW_US), "until": until_us}
    repaired = 0
    for view in VIEWS:
        missing = store.query(view.count_missing, parameters).result_rows[0][0]
        if missing:
            store.command(view.fill, parameters)
            logger.warning(
                "threadline: %d events stored without their %s (an insert cut off): aggregated now",
                missing,
                view.table,
            )
            repaired += missing
    return repaired


def repair_at_start(store: Store) -> None:
    """Repair now (the embedded store: nothing else writes to it), or in ``GRACE_S`` (a server)."""
    until_us = time.time_ns() // 1000

    def run() -> None:
        try:
            repair(store, until_us)
        except StoreUnavailable as error:  # the next start tries again; nothing is lost meanwhile
            logger.warning("threadline: could not check for aggregates cut off by a crash: %s", error)
        except Exception:  # a repair that fails must not keep the collector from starting
            logger.exception("threadline: checking for aggregates cut off by a crash failed")

    if store.embedded:
        run()
    else:
        later = threading.Timer(GRACE_S, run)
        later.daemon = True
        later.start()
