"""Filling the engine-kept aggregates with the events stored before they existed (migration 4).

Migration 4 creates the materialized views, so every event inserted after it reaches the
aggregates at insert time; the events stored before it are listed in ``aggregate_backfill`` as
slices (by transaction), with the moment the views began (``cutoff``). This worker aggregates one
slice at a time in the background, with the views' own expressions, while ingest and queries go
on. Until every slice is in, queries read the events instead of the aggregates
(``Store.aggregates_complete``): slower, and the same answer.

A slice's insert carries a deduplication token, so a slice inserted again after a crash between
its insert and its "done" mark is dropped by the engine instead of counted twice.
"""

from __future__ import annotations

import logging
import threading
import time

from . import aggregates
from .connection import RECHECK_S, Store, StoreUnavailable

logger = logging.getLogger("threadline.collector")

PENDING = """
SELECT slice, slices, cutoff
FROM aggregate_backfill FINAL
WHERE NOT done
ORDER BY slice
"""

# Events stored before the views, of one slice of the transactions.
_OLD_EVENTS = """
FROM events FINAL
WHERE received_at < {cutoff:DateTime64(6, 'UTC')}
  AND cityHash64(transaction_id) % {slices:UInt32} = {slice:UInt32}
"""

FILL_ROLLUPS = f"""
INSERT INTO transaction_rollups ({aggregates.ROLLUP_BY}, {aggregates.names(aggregates.ROLLUP)})
SELECT {aggregates.ROLLUP_BY}, {aggregates.aggregated(aggregates.ROLLUP)}
{_OLD_EVENTS}
GROUP BY {aggregates.ROLLUP_BY}
"""

FILL_TRACES = f"""
INSERT INTO workflow_traces ({aggregates.TRACE_BY}, {aggregates.names(aggregates.TRACE)})
SELECT {aggregates.TRACE_BY}, {aggregates.aggregated(aggregates.TRACE)}
{_OLD_EVENTS}
GROUP BY {aggregates.TRACE_BY}
"""

MARK_DONE = """
INSERT INTO aggregate_backfill (slice, slices, cutoff, done, version)
VALUES ({slice:UInt32}, {slices:UInt32}, {cutoff:DateTime64(6, 'UTC')}, true, 1)
"""

# One block per insert (so the token covers all of it), and a token per slice and table.
FILL_SETTINGS = (
    "\nSETTINGS max_threads = 1, insert_deduplicate = 1, insert_deduplication_token = {token:String}"
)


class AggregateBackfill:
    """Runs the pending slices in a background thread, until none is left."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-backfill", daemon=True)

    def start(self) -> AggregateBackfill:
        if not self.store.aggregates_complete():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pending = self.store.rows(PENDING)
                if not pending:
                    logger.info("threadline: the aggregates now hold every stored event")
                    return
                for part in pending:
                    if self._stop.is_set():
                        return
                    self._fill(part)
            except StoreUnavailable as error:
                logger.warning("threadline: aggregate backfill paused (%s); trying again", error)
                self._stop.wait(RECHECK_S)
            except Exception:
                logger.exception("threadline: aggregate backfill failed; queries keep reading the events")
                return

    def _fill(self, part: dict[str, object]) -> None:
        started = time.perf_counter()
        for table, sql in (("rollups", FILL_ROLLUPS), ("traces", FILL_TRACES)):
            # One block per insert, so that one token covers all of it; a token per slice and table.
            token = f"backfill-4-{table}-{part['slice']}-of-{part['slices']}"
            settings = {"max_threads": 1, "insert_deduplicate": 1, "insert_deduplication_token": token}
            self.store.command(sql, part, settings)
        self.store.command(MARK_DONE, part)
        logger.info(
            "threadline: aggregate backfill slice %d of %d in %.1f s",
            int(part["slice"]) + 1,  # type: ignore[call-overload]  # a slice number from the store
            part["slices"],
            time.perf_counter() - started,
        )
