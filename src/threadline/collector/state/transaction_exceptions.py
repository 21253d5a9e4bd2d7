"""Open exceptions per transaction: derived from its events, kept by the state keeper.

An *open exception* is a step of a transaction that is not completed whose errors were never
recovered: the step has an error event (``status: error`` or an error kind) and no ``ok`` event,
the same rule by which state says a step is done. It carries the step's latest error (kind, system,
message, when) and how many errors it had.

Deriving them reads every event of every transaction that ever erred: 1.3 M events of 220,000
transactions at 10 M events, two seconds, on every exceptions report (issue 16). So the state keeper
keeps each such transaction's open exceptions in ``transaction_exceptions`` with the state snapshot
(``snapshot.keep``): at each pass for the transactions an event was received for since the mark, on a
pass over every transaction for all of them. A read takes the kept rows and derives the transactions
changed since the mark itself (``read``), as the state snapshot's reads do; the answer is the one
the events give (a test holds the two to each other).
"""

from __future__ import annotations

import datetime as dt
import time

from threadline.contract.event import DEFAULT_ERROR_KIND

from ..schema import LATEST
from ..storage import Store
from ..storage.keys import LINKS, and_linked_into, with_current_transaction
from ..storage.migrations import OPEN_EXCEPTION, TRANSACTION_EXCEPTIONS
from .reconciliation import CHANGED_KEYS
from .rules import NOT_CHANGED_SINCE_SNAPSHOT

# An error: an event with status error, or one that names an error (a retry, say).
IS_ERROR = "status = 'error' OR error_kind != ''"

# Every event up to as_of of the transactions with an error in any of their stored parts (two narrow
# columns find them; 4.1 -> 2.7 s at 10 M events). No FINAL: ingest stores each event once
# (``storage.writes.store_events``).
ERRORED = with_current_transaction(
    f"SELECT transaction_id FROM events WHERE tenant = {{tenant:String}} AND ({IS_ERROR})"
)
EVERY_ERRING_TRANSACTION = with_current_transaction(f"""
    SELECT * FROM events
    WHERE tenant = {{tenant:String}} AND timestamp <= {{as_of:DateTime64(6, 'UTC')}}
      AND transaction_id IN ({and_linked_into(ERRORED)})
""")
# Every event of the transactions changed since the snapshot's mark, through the events' sort key.
CHANGED_TRANSACTIONS = with_current_transaction(f"""
    SELECT * FROM events
    WHERE tenant = {{tenant:String}} AND timestamp <= {{as_of:DateTime64(6, 'UTC')}}
      AND correlation_id IN ({CHANGED_KEYS})
""")

# Per transaction (the one each event belongs to now) of ``{events}`` that has an error event: its
# open exceptions, newest step error first.
_DERIVED = f"""
SELECT
    transaction_id,
    CAST(arraySort(e -> (-toUnixTimestamp64Micro(e.5), e.1),
                   groupArrayIf((step, kind, system, message, error_at, received_at, errors), oks = 0))
         AS Array({OPEN_EXCEPTION})) AS exceptions,
    max(error_at) AS last_error_at
FROM
(
    SELECT
        current_transaction AS transaction_id,
        toString(step) AS step,
        argMaxIf(error_kind, timestamp, is_error) AS last_kind,
        if(last_kind = '', '{DEFAULT_ERROR_KIND}', toString(last_kind)) AS kind,
        toString(argMaxIf(system, timestamp, is_error)) AS system,
        argMaxIf(error_message, timestamp, is_error) AS message,
        maxIf(timestamp, is_error) AS error_at,
        maxIf(received_at, is_error) AS received_at,
        countIf(is_error) AS errors,
        countIf(status = 'ok') AS oks
    FROM
    (
        SELECT current_transaction, step, system, status, error_kind, error_message, timestamp,
               received_at, ({IS_ERROR}) AS is_error
        FROM ({{events}})
    )
    GROUP BY transaction_id, step
    HAVING errors > 0
)
GROUP BY transaction_id
"""
DERIVED = _DERIVED.replace("{events}", EVERY_ERRING_TRANSACTION)
DERIVED_CHANGED = _DERIVED.replace("{events}", CHANGED_TRANSACTIONS)

# The kept rows with an open exception, but those of a transaction linked into another since (the
# other's row holds its events) or changed since the mark (derived again instead).
KEPT = f"""
SELECT transaction_id, exceptions
FROM {TRANSACTION_EXCEPTIONS.name} FINAL
WHERE tenant = {{tenant:String}} AND notEmpty(exceptions)
  AND transaction_id NOT IN (SELECT transaction_id FROM ({LINKS})) {{not_changed}}
"""

_KEEP = f"""
INSERT INTO {TRANSACTION_EXCEPTIONS.name} (tenant, transaction_id, exceptions, last_error_at, version)
SELECT {{tenant:String}}, transaction_id, exceptions, last_error_at, {{version:UInt64}}
FROM ({{derived}})
"""
KEEP_ALL = _KEEP.replace("{derived}", DERIVED)
KEEP_CHANGED = _KEEP.replace("{derived}", DERIVED_CHANGED)


def read(kept: bool, changed: bool = True) -> str:
    """Every transaction with an open exception as of ``as_of`` (columns ``transaction_id`` and
    ``exceptions``): from the kept rows, and the transactions changed since ``snapshot_since``
    derived again (``kept``, when the snapshot holds every transaction up to then and no event is
    later than as_of; ``changed``: False when no event was received since), or all derived."""
    if not kept:
        return DERIVED
    if not changed:
        return KEPT.replace("{not_changed}", "")
    return (
        KEPT.replace("{not_changed}", NOT_CHANGED_SINCE_SNAPSHOT)
        + "\nUNION ALL\n"
        + (f"SELECT transaction_id, exceptions FROM ({DERIVED_CHANGED})")
    )


def keep_changed(store: Store, tenant: str, snapshot_since: dt.datetime) -> None:
    """Keep again the transactions an event was received for since ``snapshot_since``."""
    store.command(KEEP_CHANGED, _bound(tenant) | {"snapshot_since": snapshot_since})


def keep_all(store: Store, tenant: str) -> None:
    """Keep every transaction that ever erred (a pass over every transaction)."""
    store.command(KEEP_ALL, _bound(tenant))


def _bound(tenant: str) -> dict[str, object]:
    return {"tenant": tenant, "as_of": LATEST, "version": time.time_ns() // 1000}
