"""What the engine keeps per transaction at insert time: one definition, three uses.

A materialized view aggregates every inserted block of events into ``transaction_rollups``
(per tenant and the transaction each event was stored under), and another into
``workflow_traces`` (per workflow and transaction: its ordered step trace, for the process map).
Every column is a ``SimpleAggregateFunction``, so a read with FINAL gives plain values, and the
same functions merge rows again at query time (transactions linked after their events were
stored). Nothing here depends on the workflow definitions: they are applied at query time
(``state/rules.py``), so neither a start nor a reload rebuilds anything.

The same expressions aggregate raw events where the rollups cannot answer (a transaction's
state as of a moment before its last event): the two paths cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

TIME = "DateTime64(6, 'UTC')"


@dataclass(frozen=True)
class Aggregate:
    name: str
    function: str  # the SimpleAggregateFunction that merges two values of this column
    type: str
    expression: str  # over the columns of ``events``, for one group of them

    @property
    def column(self) -> str:
        return f"{self.name} SimpleAggregateFunction({self.function}, {self.type})"

    @property
    def remerged(self) -> str:
        """Merges already aggregated values of this column (rows of one transaction, linked later)."""
        return f"{self.function}({self.name}) AS {self.name}"

    @property
    def aggregated(self) -> str:
        return f"{self.expression} AS {self.name}"


# Ties in event time break by arrival (``seq``: live, the order received; replayed, the file's),
# then by event id: a text that sorts so, to keep the tuples' String element (migration 8).
ARRIVAL = "concat(leftPad(toString(seq), 20, '0'), event_id)"

# Per transaction (the one each event was stored under).
ROLLUP = (
    Aggregate("keys", "groupUniqArrayArray", "Array(String)", "groupUniqArray(correlation_id)"),
    Aggregate(
        "first_event",
        "min",
        f"Tuple({TIME}, String, String)",
        f"min((timestamp, {ARRIVAL}, toString(workflow)))",
    ),
    Aggregate("last_activity", "max", TIME, "max(timestamp)"),
    Aggregate("step_first", "minMap", f"Map(String, {TIME})", "minMap(map(toString(step), timestamp))"),
    Aggregate(
        "step_first_ok",
        "minMap",
        f"Map(String, {TIME})",
        "minMapIf(map(toString(step), timestamp), status = 'ok')",
    ),
    Aggregate("systems", "groupUniqArrayArray", "Array(String)", "groupUniqArray(toString(system))"),
    Aggregate("event_count", "sum", "UInt64", "toUInt64(count())"),
    Aggregate("error_count", "sum", "UInt64", "toUInt64(countIf(status = 'error'))"),
    Aggregate(
        "retry_count", "sum", "UInt64", "toUInt64(countIf(status = 'retrying' OR ifNull(attempt, 1) > 1))"
    ),
    # (has one, time, arrival, value): the latest event that carries one wins.
    Aggregate(
        "latest_amount",
        "max",
        f"Tuple(Bool, {TIME}, String, Float64)",
        f"max((amount IS NOT NULL, timestamp, {ARRIVAL}, ifNull(amount, 0)))",
    ),
    Aggregate(
        "latest_currency",
        "max",
        f"Tuple(Bool, {TIME}, String, String)",
        f"max((currency != '', timestamp, {ARRIVAL}, toString(currency)))",
    ),
    Aggregate("announced", "groupUniqArrayArray", "Array(String)", "groupUniqArrayArray(mapValues(aliases))"),
)

# Which inserts of events each row aggregates (their ``version``, one per INSERT): a crash between
# an insert's events and its views' rows leaves those events without aggregates, and this is how
# the next start finds them (``storage/repair.py``). Kept beside, not in, ROLLUP and TRACE: no read
# needs it.
BATCHES = Aggregate("batches", "groupUniqArrayArray", "Array(UInt64)", "groupUniqArray(version)")

ROLLUP_BY = "tenant, transaction_id"

# Per workflow and transaction: the events in order (time, arrival, a hash of the event id: eight
# bytes, not thirty-two, for the rare tie) with their step and system.
TRACE = (
    Aggregate("started_at", "min", TIME, "min(timestamp)"),
    Aggregate(
        "trace",
        "groupArrayArray",
        f"Array(Tuple({TIME}, UInt64, UInt64, String, String))",
        "groupArray((timestamp, seq, cityHash64(event_id), toString(step), toString(system)))",
    ),
)

TRACE_BY = "tenant, workflow, transaction_id"


# Per system, step, hour (event time) and attribute key: how many events carried it, the first and
# the latest time one did; the key '' counts every event of the step. What schema drift is learned
# from (``state/drift.py``): a few hundred rows per hour at most, whatever the traffic. ``amount``
# and ``currency`` count as keys too, though they have columns of their own: a system that stops
# sending the amount has drifted as much as one that stops sending a plan.
PRESENCE = (
    Aggregate("events", "sum", "UInt64", "toUInt64(count())"),
    Aggregate("first_seen", "min", TIME, "min(timestamp)"),
    Aggregate("last_seen", "max", TIME, "max(timestamp)"),
)

PRESENCE_BY = "tenant, hour, system, step, attribute"
PRESENCE_KEYS = "tenant, toStartOfHour(timestamp) AS hour, system, step, attribute"
# The keys one event counts under.
EVENT_KEYS = (
    "arrayDistinct(arrayConcat([''], mapKeys(attributes),"
    " if(amount IS NULL, [], ['amount']), if(currency = '', [], ['currency'])))"
)
PRESENCE_JOIN = f"ARRAY JOIN {EVENT_KEYS} AS attribute"


def columns(aggregates: tuple[Aggregate, ...]) -> str:
    return ",\n    ".join(aggregate.column for aggregate in aggregates)


def aggregated(aggregates: tuple[Aggregate, ...]) -> str:
    return ",\n    ".join(aggregate.aggregated for aggregate in aggregates)


def remerged(aggregates: tuple[Aggregate, ...]) -> str:
    return ",\n    ".join(aggregate.remerged for aggregate in aggregates)


def names(aggregates: tuple[Aggregate, ...]) -> str:
    return ", ".join(aggregate.name for aggregate in aggregates)
