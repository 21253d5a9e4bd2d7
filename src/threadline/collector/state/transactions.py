"""Reading transactions: find one by any of its keys, list them for the operations queue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from threadline.contract.event import DEFAULT_ERROR_KIND

from .. import cursors
from ..models import (
    MISMATCHES,
    AliasConflict,
    Duplicate,
    EventErrorView,
    EventView,
    Sla,
    TransactionSummary,
    Violation,
    WaitingStep,
)
from ..schema import EARLIEST, LATEST
from ..storage import Store
from ..storage.columns import EVENT_COLUMNS
from ..storage.writes import BOTH_STARTED, CLAIMED, CONFLICT_COLUMNS, OTHER_KIND, utc
from ..workflows import Workflows
from . import dimensions, snapshot
from .dimensions import DimensionFilter
from .forecast import FORECASTED, ForecastModel, forecast_of, forecast_parameters
from .rules import summary_parameters, summary_sql

OPEN_STATES = {"stuck", "in_progress"}
# What an event's view is made of: every stored column but the tenant (the caller's), the transaction
# it was stored under (a link may have moved it since), its arrival order and the row's version. The
# error's four columns make its `error`.
EVENT_VIEW_COLUMNS = tuple(
    column for column in EVENT_COLUMNS if column not in ("tenant", "transaction_id", "seq", "version")
)
# An alias conflict as the lookup reads it: its columns but the tenant and the version.
CONFLICT_FIELDS = CONFLICT_COLUMNS[1:-1]

# The transaction of {key}: where the key mapping puts it, else the key itself.
FOUND = """
ifNull(
    (SELECT argMax(transaction_id, version) FROM aliases
     WHERE tenant = {tenant:String} AND alias = {key:String} HAVING count() > 0),
    {key:String}) AS found"""

# That transaction, the keys its events are stored under and the aliases announced for it: one
# read of the mapping and the rollups.
RESOLVE_KEY = f"""
WITH {FOUND}
SELECT found, groupUniqArrayArray(keys) AS keys, groupUniqArrayArray(announced) AS announced
FROM transaction_rollups
WHERE tenant = {{tenant:String}}
  AND transaction_id IN (
      SELECT found
      UNION ALL
      SELECT transaction_id FROM transaction_links FINAL
      WHERE tenant = {{tenant:String}} AND merged_into = found
  )
HAVING count() > 0
"""

# The same from the key mapping alone, while the rollups do not hold every stored event yet.
RESOLVE_KEY_FROM_MAPPING = f"""
WITH {FOUND},
    (SELECT groupArray(alias) FROM aliases FINAL
     WHERE tenant = {{tenant:String}} AND transaction_id = found) AS aliases_of_found
SELECT
    found,
    arrayConcat([found], aliases_of_found,
                (SELECT groupArray(transaction_id) FROM transaction_links FINAL
                 WHERE tenant = {{tenant:String}} AND merged_into = found)) AS keys,
    aliases_of_found AS announced
"""

# Its state, every event up to as_of in event-time order (ties: arrival), and its aliases.
ONE = f"""
SELECT
    *,
    (
        SELECT groupArray(({", ".join(EVENT_VIEW_COLUMNS)}))
        FROM (
            SELECT {", ".join(EVENT_VIEW_COLUMNS)}
            FROM events
            WHERE tenant = {{tenant:String}} AND correlation_id IN {{keys:Array(String)}}
              AND timestamp <= {{as_of:DateTime64(6, 'UTC')}}
            ORDER BY timestamp, seq, event_id
        )
    ) AS event_rows,
    (
        SELECT groupArray((kind, alias))
        FROM (
            SELECT alias, argMax(kind, version) AS kind
            FROM aliases
            WHERE tenant = {{tenant:String}} AND alias IN {{announced:Array(String)}}
            GROUP BY alias
            HAVING argMax(transaction_id, version) = {{transaction:String}}
            ORDER BY alias
        )
    ) AS alias_rows,
    (
        SELECT groupArray(({", ".join(CONFLICT_FIELDS)}))
        FROM (
            SELECT {", ".join(CONFLICT_FIELDS)}
            FROM alias_conflicts FINAL
            WHERE tenant = {{tenant:String}}
              AND (claimed_by IN {{keys:Array(String)}} OR belongs_to IN {{keys:Array(String)}}
                   OR claimed_by = {{transaction:String}} OR belongs_to = {{transaction:String}})
            ORDER BY seen_at, alias
        )
    ) AS conflict_rows
FROM ({{summary}})
"""

# The queue, newest activity first, each row with its forecast's columns (``forecast.FORECASTED``):
# it filters and sorts by them. A ``str.format`` template of ``summary``, as the other queries.
_FORECASTED = FORECASTED.replace("{", "{{").replace("}", "}}").replace("{{summary}}", "{summary}")
BY_ACTIVITY = "last_activity DESC, transaction_id DESC"
# Only the page's ids and the total: carrying every column of every matching row through the
# count and the sort cost twice as much (0.9 -> 0.45 s at 10 M events); the page's rows are then
# read by id (PAGE).
LIST = """
SELECT transaction_id, total FROM
(
    SELECT *, count() OVER () AS total
    FROM ({forecasted})
    WHERE (empty({{workflow:String}}) OR workflow = {{workflow:String}})
      AND (empty({{states:Array(String)}}) OR has({{states:Array(String)}}, state))
      AND (empty({{system:String}})
           OR has(systems, {{system:String}}) OR has(waiting_systems, {{system:String}}))
      AND ({{breached:Int8}} < 0 OR breached = {{breached:Int8}})
      AND (NOT {{with_violations:Bool}} OR notEmpty(violations))
      AND (NOT {{attention:Bool}}
           OR (NOT resolved AND (state IN ('stuck', 'failed') OR breached OR notEmpty(violations)
                                 OR notEmpty(mismatch_fields) OR notEmpty(duplicates))))
      AND (NOT {{with_mismatches:Bool}} OR notEmpty(mismatch_fields))
      AND (NOT {{with_duplicates:Bool}} OR notEmpty(duplicates))
      AND started_at >= {{since:DateTime64(6, 'UTC')}} AND started_at <= {{until:DateTime64(6, 'UTC')}}
      AND (NOT {{predicted_breach:Bool}} OR breach_expected)
      AND {{in_slice}}
)
WHERE (last_activity, transaction_id) < ({{after_time:DateTime64(6, 'UTC')}}, {{after_id:String}})
ORDER BY {by_activity}
LIMIT {{limit:UInt32}}
""".replace("{forecasted}", _FORECASTED).replace("{by_activity}", BY_ACTIVITY)
# Or the soonest predicted breach first: the first page only (a forecast moves with the clock, so no
# cursor could hold a place in that order).
BY_PREDICTED_BREACH = f"breach_expected DESC, breach_lead_seconds ASC NULLS LAST, {BY_ACTIVITY}"
QueueOrder = Literal["activity", "predicted_breach"]
LISTS: dict[QueueOrder, str] = {
    "activity": LIST,
    "predicted_breach": LIST.replace(f"ORDER BY {BY_ACTIVITY}", f"ORDER BY {BY_PREDICTED_BREACH}"),
}


# The rows of a page, by id, each with its forecast's columns (scope: PAGE_SCOPE).
PAGE = f"SELECT * FROM ({_FORECASTED}) WHERE {{scope}}"
PAGE_SCOPE = "transaction_id IN {page:Array(String)}"

# The transactions the keeper found a mismatch or a duplicate in (``reconciliation.py``): the queue's
# `issue` filter derives only these (a condition on transaction_id: the snapshot's and the rollups').
FLAGGED = """transaction_id IN (
    SELECT transaction_id FROM transaction_reconciliations FINAL
    WHERE tenant = {tenant:String}
      AND (NOT {with_mismatches:Bool} OR notEmpty(mismatch_fields))
      AND (NOT {with_duplicates:Bool} OR notEmpty(duplicates)))"""


def summary_of(
    row: dict[str, Any],
    as_of: dt.datetime,
    model: ForecastModel | None = None,
    dimension_values: dict[str, str] | None = None,
) -> TransactionSummary:
    limit = row["sla_limit"] or None
    elapsed = max(float(row["sla_elapsed"]), 0.0)
    waiting = []
    for step, system, due_since, within in zip(
        row["waiting"], row["waiting_systems"], row["due_since"], row["waiting_within"], strict=True
    ):
        due = utc(due_since)
        waiting.append(
            WaitingStep(
                step=step,
                system=system or None,
                expected_system=system or None,
                due_since=due,
                within_seconds=within or None,
                overdue=bool(within) and (as_of - due).total_seconds() > within,
            )
        )
    return TransactionSummary(
        correlation_id=row["transaction_id"],
        workflow=row["workflow"],
        state=row["state"],
        started_at=utc(row["started_at"]),
        last_activity=utc(row["last_activity"]),
        completed_at=utc(row["completed_at"]) if row["completed_at"] else None,
        failed_at=utc(row["failed_at"]) if row["failed_at"] else None,
        waiting_on=waiting,
        sla=Sla(
            limit_seconds=limit,
            elapsed_seconds=elapsed,
            breached=bool(row["breached"]),
            breached_by_seconds=max(elapsed - limit, 0.0) if limit else 0.0,
        ),
        missing_steps=list(row["missing"]),
        violations=[Violation.of(*violation) for violation in row["violations"]],
        systems=sorted(row["systems"]),
        amount=row["amount"],
        currency=row["currency"] or None,
        event_count=row["event_count"],
        error_count=row["error_count"],
        retry_count=row["retry_count"],
        resolved=bool(row["resolved"]),
        mismatches=MISMATCHES.validate_json(row["mismatches"]) if row["mismatches"] else [],
        duplicates=[
            Duplicate(correlation_id=other, field=row["key_field"], value=row["key_value"])
            for other in row["duplicates"]
        ],
        forecast=forecast_of(row, model, as_of) if model is not None else None,
        dimensions=dimension_values or {},
    )


def event_view(row: dict[str, Any]) -> EventView:
    return EventView(
        event_id=row["event_id"],
        correlation_id=row["correlation_id"],
        workflow=row["workflow"],
        step=row["step"],
        system=row["system"],
        status=row["status"],
        timestamp=utc(row["timestamp"]),
        received_at=utc(row["received_at"]),
        duration_ms=row["duration_ms"],
        attempt=row["attempt"],
        error=EventErrorView(
            # An error stored before every error had a kind takes the default, as it would now.
            kind=row["error_kind"] or DEFAULT_ERROR_KIND,
            message=row["error_message"],
            type=row["error_type"] or None,
            stacktrace=row["error_stacktrace"] or None,
        )
        if row["error_kind"] or row["status"] == "error"
        else None,
        amount=row["amount"],
        currency=row["currency"] or None,
        aliases=dict(row["aliases"]),
        attributes=dict(row["attributes"]),
        trace_id=row["trace_id"] or None,
        span_id=row["span_id"] or None,
        source=row["source"],
    )


def conflict_view(row: dict[str, Any], keys: set[str]) -> AliasConflict:
    """A stored conflict as seen from the transaction whose keys are ``keys``."""
    alias, kind, announced_by = row["alias"], row["kind"], row["announced_by"]
    announced = f"{announced_by} announced {alias} as its {kind}"
    messages = {
        CLAIMED: f"{announced}, but {alias} already belongs to transaction {row['belongs_to']}",
        OTHER_KIND: f"{announced}, but {alias} is a {row['key_kind']} key: another key with the same value",
        BOTH_STARTED: f"{announced}, but {alias} is a transaction of its own that had already started, "
        f"as {row['claimed_by']} had: two started transactions are never merged",
    }
    ours = row["claimed_by"] in keys
    return AliasConflict(
        alias=alias,
        kind=kind,
        reason=row["reason"],
        announced_by=announced_by,
        other_transaction=row["belongs_to"] if ours else row["claimed_by"],
        message=messages[row["reason"]] + "; not linked.",
        seen_at=utc(row["seen_at"]),
    )


@dataclass(frozen=True)
class Found:
    summary: TransactionSummary
    aliases: dict[str, str]
    alias_conflicts: list[AliasConflict]
    events: list[EventView]


def find(
    store: Store,
    workflows: Workflows,
    tenant: str,
    key: str,
    as_of: dt.datetime,
    model: ForecastModel | None = None,
) -> Found | None:
    """The transaction that ``key`` (its correlation id or any alias) belongs to, as of ``as_of``."""
    resolve = RESOLVE_KEY if store.aggregates_complete() else RESOLVE_KEY_FROM_MAPPING
    resolved = store.rows(resolve, {"tenant": tenant, "key": key})
    if not resolved:
        return None
    transaction = resolved[0]["found"]
    kept = snapshot.unchanged(store, workflows, tenant, resolved[0]["keys"], as_of)
    parameters = summary_parameters(
        workflows,
        tenant,
        as_of,
        transaction=transaction,
        keys=resolved[0]["keys"],
        announced=resolved[0]["announced"],
        **forecast_parameters(model),
    )
    summary = FORECASTED.replace("{summary}", summary_sql(one_transaction=True, snapshot=kept))
    rows = store.rows(ONE.replace("{summary}", summary), parameters)
    if not rows:
        return None  # every event of it is after as_of
    row = rows[0]
    keys = {transaction, *resolved[0]["keys"]}
    found_dimensions = dimensions.of_transactions(store, workflows, tenant, [transaction])
    return Found(
        summary=summary_of(row, as_of, model, found_dimensions.get(transaction)),
        aliases=dict(row["alias_rows"]),
        alias_conflicts=[
            conflict_view(dict(zip(CONFLICT_FIELDS, conflict, strict=True)), keys)
            for conflict in row["conflict_rows"]
        ],
        events=[event_view(dict(zip(EVENT_VIEW_COLUMNS, event, strict=True))) for event in row["event_rows"]],
    )


@dataclass(frozen=True)
class ListFilters:
    workflow: str = ""
    states: tuple[str, ...] = ()
    system: str = ""
    breached: bool | None = None
    with_violations: bool = False
    attention: bool = False
    with_mismatches: bool = False
    with_duplicates: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    predicted_breach: bool = False
    dimensions: tuple[DimensionFilter, ...] = ()  # each must hold
    order: QueueOrder = "activity"


def page(
    store: Store,
    workflows: Workflows,
    tenant: str,
    filters: ListFilters,
    as_of: dt.datetime,
    limit: int,
    after: cursors.Position | None,
    model: ForecastModel | None = None,
) -> tuple[list[TransactionSummary], int, str | None]:
    """A page of transactions, newest activity first (or by ``filters.order``), with the total and
    the next cursor."""
    after_time, after_id = after or cursors.FIRST_PAGE
    state = snapshot.read(
        store,
        workflows,
        tenant,
        as_of,
        open_only=bool(filters.states) and set(filters.states) <= OPEN_STATES,
        scope=" AND ".join(
            condition
            for condition, wanted in (
                (FLAGGED, filters.with_mismatches or filters.with_duplicates),
                (dimensions.condition(filters.dimensions), bool(filters.dimensions)),
            )
            if wanted
        ),
        # LIST reads the reconciliation's columns only to filter: its rows are joined for those filters
        reconciled=filters.attention or filters.with_mismatches or filters.with_duplicates,
        dimension_filters=dimensions.bound(filters.dimensions),
        workflow=filters.workflow,
        states=list(filters.states),
        system=filters.system,
        breached=-1 if filters.breached is None else int(filters.breached),
        with_violations=filters.with_violations,
        attention=filters.attention,
        with_mismatches=filters.with_mismatches,
        with_duplicates=filters.with_duplicates,
        since=filters.since or EARLIEST,
        until=filters.until or LATEST,
        after_time=after_time,
        after_id=after_id,
        limit=limit + 1,
        predicted_breach=filters.predicted_breach,
        **forecast_parameters(model),
    )
    # The read narrows every part to the slice (its scope) but the transactions with events after
    # as_of: only those are sliced again (building the slice's set twice cost 55 ms at 10 M events).
    in_slice = dimensions.condition(filters.dimensions) if state.late else "1"
    sql = LISTS[filters.order].format(summary=state.sql).replace("{in_slice}", in_slice)
    found = store.rows(sql, state.parameters)
    total = found[0]["total"] if found else 0
    ids = [row["transaction_id"] for row in found[:limit]]
    pending = (state.changed, state.late)
    by_id = {
        row["transaction_id"]: row for row in _rows_of(store, workflows, tenant, as_of, ids, model, pending)
    }
    listed = dimensions.of_transactions(store, workflows, tenant, ids)
    items = [summary_of(by_id[id_], as_of, model, listed.get(id_)) for id_ in ids if id_ in by_id]
    pages = filters.order == "activity" and len(found) > limit and bool(items)
    next_cursor = cursors.encode(items[-1].last_activity, items[-1].correlation_id) if pages else None
    return items, total, next_cursor


def _rows_of(
    store: Store,
    workflows: Workflows,
    tenant: str,
    as_of: dt.datetime,
    ids: list[str],
    model: ForecastModel | None,
    pending: tuple[bool, bool],
) -> list[dict[str, Any]]:
    """The summary rows of these transactions as of ``as_of``, with their forecasts' columns
    (``pending``: what the list's read found, ``snapshot.read``)."""
    if not ids:
        return []
    summary, parameters = snapshot.summary(
        store,
        workflows,
        tenant,
        as_of,
        scope=PAGE_SCOPE,
        keyed=PAGE_SCOPE,
        pending=pending,
        page=ids,
        **forecast_parameters(model),
    )
    return store.rows(PAGE.format(summary=summary, scope=PAGE_SCOPE), parameters)
