"""Exceptions, and what operators do about them: acknowledge, resolve, reopen, all audited.

An *open exception* is a step of a transaction that is not completed whose errors were never
recovered (``transaction_exceptions``: derived from the events, kept by the state keeper).
Exceptions are grouped by error kind (transient, business, validation, auth, timeout; an error
stored without one has the default kind) and by the system of the step's latest error, with counts
and the transactions behind them.

Operators answer them in two ways, each recorded in ``audit_log`` with who (the API key's name,
and the person if the caller names one), when and why:

- *acknowledge* a group (kind and system, optionally one workflow): "seen, someone is on it". It
  covers the exceptions that had arrived when it was made; a later error shows as new again.
- *resolve* a transaction: "handled outside the integrations". It leaves the attention set: the
  queue's attention filter, the stuck count and value at risk, alerts and open exceptions, until
  someone *reopens* it. Its state stays what the events say; a resolution is not an event.

The audit log is the only record of both, so the trail and what the figures use can never
disagree. ``rules.RESOLVED_TRANSACTIONS`` is the one query that says which transactions are resolved.

Viewing needs the ``read`` role; the three actions need ``act`` (``routes.exception_groups.actions``):
reading and acting are different roles, so a read key cannot change what operators see. They change no
event and no definition, and each names its key and person in the trail; asking for ``admin``
would push the dashboard to hold a key that may also ingest and reload definitions.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .. import cursors
from ..models import (
    AcknowledgeRequest,
    AcknowledgeResult,
    AuditAction,
    AuditEntry,
    AuditPage,
    BulkActionRequest,
    BulkActionResult,
    BulkItemResult,
    CommentRequest,
    ExceptionGroup,
    ExceptionItem,
    ExceptionsReport,
)
from ..schema import EARLIEST, LATEST
from ..storage import Store
from ..workflows import Workflows
from . import snapshot, transaction_exceptions
from .rules import RESOLVED_TRANSACTIONS
from .transactions import RESOLVE_KEY, utc

# Per open exception, its transaction's workflow and state; only transactions not completed nor
# resolved, as filtered. ``{exceptions}``: ``transaction_exceptions.read``.
OPEN_EXCEPTIONS = """
SELECT
    errors.transaction_id AS transaction_id,
    open.workflow AS workflow,
    open.state AS state,
    errors.step AS step,
    errors.kind AS kind,
    errors.system AS system,
    errors.message AS message,
    errors.error_at AS error_at,
    errors.received_at AS received_at,
    errors.errors AS errors
FROM
(
    SELECT transaction_id, e.1 AS step, e.2 AS kind, e.3 AS system, e.4 AS message, e.5 AS error_at,
           e.6 AS received_at, e.7 AS errors
    FROM ({exceptions})
    ARRAY JOIN exceptions AS e
) AS errors
INNER JOIN
(
    SELECT transaction_id, workflow, state
    FROM ({summary})
    WHERE state != 'completed'
) AS open ON open.transaction_id = errors.transaction_id
WHERE errors.transaction_id NOT IN ({resolved})
  AND (empty({{kind:String}}) OR kind = {{kind:String}})
  AND (empty({{system:String}}) OR system = {{system:String}})
  AND (empty({{workflow:String}}) OR workflow = {{workflow:String}})
ORDER BY error_at DESC, transaction_id, step
"""

AUDIT_COLUMNS = (
    "tenant",
    "transaction_id",
    "at",
    "action_id",
    "action",
    "actor",
    "operator",
    "correlation_id",
    "kind",
    "system",
    "workflow",
    "comment",
)

ACKNOWLEDGEMENTS = """
SELECT *
FROM audit_log
WHERE tenant = {tenant:String} AND action = 'acknowledge' AND at <= {as_of:DateTime64(6, 'UTC')}
ORDER BY at DESC, action_id DESC
"""

LATEST_RESOLUTION = """
SELECT *
FROM audit_log
WHERE tenant = {tenant:String} AND transaction_id = {transaction:String} AND action IN ('resolve', 'reopen')
ORDER BY at DESC, action_id DESC
LIMIT 1
"""

AUDIT = """
SELECT *
FROM audit_log
WHERE tenant = {tenant:String}
  AND (empty({action:String}) OR action = {action:String})
  AND (empty({transaction:String}) OR transaction_id = {transaction:String})
  AND at >= {since:DateTime64(6, 'UTC')} AND at <= {until:DateTime64(6, 'UTC')}
  AND (at, action_id) < ({after_time:DateTime64(6, 'UTC')}, {after_id:String})
ORDER BY at DESC, action_id DESC
LIMIT {limit:UInt32}
"""

# The latest resolve or reopen of each of several transactions (a bulk resolve checks them at once).
LATEST_RESOLUTIONS = """
SELECT transaction_id, argMax(action, (at, action_id)) AS latest, argMax(actor, (at, action_id)) AS by,
       max(at) AS latest_at
FROM audit_log
WHERE tenant = {tenant:String} AND transaction_id IN {transactions:Array(String)}
  AND action IN ('resolve', 'reopen')
GROUP BY transaction_id
"""

# The report in one statement, over OPEN_EXCEPTIONS: per group (kind, system) its counts and its
# newest ``limit`` items; the grand total row of the grouping sets (``everything``) counts each
# transaction once however many groups it is in. At 10 M events, 80,000 open exceptions no longer
# travel to Python one row each (3.6 -> 1.7 s). An acknowledgement covers an exception of its
# transaction, or of its group, that had arrived when it was made (the acknowledgements are few:
# bound as arrays, the newest first).
GROUPED = """
SELECT
    grouping(kind, system) != 0 AS everything,
    kind,
    system,
    uniqExact(transaction_id) AS transactions,
    sum(failing_steps) AS exceptions,
    sum(covered_steps) AS acknowledged,
    sumMap(map(workflow, toUInt64(1))) AS workflows,
    max(latest_error) AS last_error_at,
    groupArraySortedArray({{limit:UInt32}})(newest) AS items
FROM
(
    SELECT
        kind, system, workflow, transaction_id,
        count() AS failing_steps,
        countIf(covered) AS covered_steps,
        max(error_at) AS latest_error,
        -- newest error first, then by transaction and step; the sort key leads each item
        groupArraySorted({{limit:UInt32}})(
            (-toUnixTimestamp64Micro(error_at), transaction_id, step, workflow, state, message,
             errors, covered, error_at)
        ) AS newest
    FROM
    (
        SELECT
            *,
            arrayExists(
                (ack_transaction, ack_kind, ack_system, ack_workflow, ack_at) ->
                    if(ack_transaction != '',
                       ack_transaction = transaction_id,
                       ack_kind = kind AND ack_system = system
                           AND (ack_workflow = '' OR ack_workflow = workflow))
                    AND ack_at >= received_at,
                {{ack_transactions:Array(String)}}, {{ack_kinds:Array(String)}},
                {{ack_systems:Array(String)}}, {{ack_workflows:Array(String)}},
                {{ack_ats:Array(DateTime64(6, 'UTC'))}}
            ) AS covered
        FROM ({open_exceptions})
    )
    GROUP BY kind, system, workflow, transaction_id
)
GROUP BY GROUPING SETS ((kind, system), ())
"""

# Resolving a transaction is check-then-write; one collector process serializes them here.
_actions = threading.Lock()


def _open_exceptions(
    store: Store, workflows: Workflows, tenant: str, filters: ExceptionFilters, as_of: dt.datetime
) -> tuple[str, dict[str, Any]]:
    """OPEN_EXCEPTIONS and its parameters: from the kept rows wherever the snapshot holds them."""
    state = snapshot.read(
        store, workflows, tenant, as_of, kind=filters.kind, system=filters.system, workflow=filters.workflow
    )
    exceptions = transaction_exceptions.read(kept=state.kept and not state.late, changed=state.changed)
    sql = OPEN_EXCEPTIONS.format(summary=state.sql, exceptions=exceptions, resolved=RESOLVED_TRANSACTIONS)
    return sql, state.parameters


def audit_entry(row: dict[str, Any]) -> AuditEntry:
    # A retry request keeps what it asked and what the integration answered as JSON in ``kind``:
    # the trail has no columns of its own for them, and a schema change is not worth three fields.
    retry = orjson.loads(row["kind"]) if row["action"] == "retry" and row["kind"] else {}
    return AuditEntry(
        request=retry.get("request"),
        step=retry.get("step"),
        outcome=retry.get("outcome"),
        id=row["action_id"],
        at=utc(row["at"]),
        action=row["action"],
        actor=row["actor"],
        operator=row["operator"] or None,
        correlation_id=row["correlation_id"] or None,
        kind=None if retry else row["kind"] or None,
        system=row["system"] or None,
        workflow=row["workflow"] or None,
        comment=row["comment"],
    )


@dataclass(frozen=True)
class Acknowledgement:
    """A group's acknowledgement, or one transaction's (a bulk acknowledge: ``transaction`` set)."""

    transaction: str
    entry: AuditEntry


def _acknowledgements_bound(acks: list[Acknowledgement]) -> dict[str, list[Any]]:
    """The acknowledgements as GROUPED binds them: one array per field ('' for none)."""
    return {
        "ack_transactions": [ack.transaction for ack in acks],
        "ack_kinds": [ack.entry.kind or "" for ack in acks],
        "ack_systems": [ack.entry.system or "" for ack in acks],
        "ack_workflows": [ack.entry.workflow or "" for ack in acks],
        "ack_ats": [ack.entry.at for ack in acks],
    }


@dataclass(frozen=True)
class ExceptionFilters:
    kind: str = ""
    system: str = ""
    workflow: str = ""


def open_exceptions(
    store: Store,
    workflows: Workflows,
    tenant: str,
    filters: ExceptionFilters,
    as_of: dt.datetime,
    limit: int = 100,
) -> ExceptionsReport:
    """Open exceptions grouped by kind and system, most unacknowledged first."""
    open_sql, parameters = _open_exceptions(store, workflows, tenant, filters, as_of)
    acks = [
        Acknowledgement(row["transaction_id"], audit_entry(row))
        for row in store.rows(ACKNOWLEDGEMENTS, {"tenant": tenant, "as_of": as_of})
    ]
    rows = store.rows(
        GROUPED.format(open_exceptions=open_sql),
        # groupArraySorted keeps one item at least (an acknowledgement asks for none)
        {**parameters, **_acknowledgements_bound(acks), "limit": max(limit, 1)},
    )
    total = next((row for row in rows if row["everything"]), {"transactions": 0, "exceptions": 0})
    groups = []
    for row in rows:
        if row["everything"]:
            continue
        kind, system = row["kind"], row["system"]
        latest_ack = next(
            (
                ack
                for ack in (ack.entry for ack in acks if not ack.transaction)
                if ack.kind == kind
                and ack.system == system
                and (ack.workflow is None or not filters.workflow or ack.workflow == filters.workflow)
            ),
            None,
        )
        groups.append(
            ExceptionGroup(
                kind=kind,
                system=system,
                transactions=row["transactions"],
                exceptions=row["exceptions"],
                acknowledged=row["acknowledged"],
                workflows=dict(sorted(row["workflows"].items())),
                last_error_at=utc(row["last_error_at"]),
                acknowledgement=latest_ack,
                items=[_item(item) for item in row["items"][:limit]],
            )
        )
    groups.sort(key=lambda g: (-(g.exceptions - g.acknowledged), -g.transactions, g.kind, g.system))
    return ExceptionsReport(
        as_of=as_of, transactions=total["transactions"], exceptions=total["exceptions"], groups=groups
    )


def _item(item: tuple[Any, ...]) -> ExceptionItem:
    """One of GROUPED's items (its sort key first)."""
    _, transaction_id, step, workflow, state, message, errors, acknowledged, error_at = item
    return ExceptionItem(
        correlation_id=transaction_id,
        workflow=workflow,
        state=state,
        step=step,
        message=message,
        error_at=utc(error_at),
        errors=errors,
        acknowledged=acknowledged,
    )


def _audit_row(tenant: str, actor: str, action: AuditAction, **fields: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "transaction_id": "",
        "at": dt.datetime.now(dt.UTC),
        "action_id": str(uuid.uuid4()),
        "action": action,
        "actor": actor,
        "operator": "",
        "correlation_id": "",
        "kind": "",
        "system": "",
        "workflow": "",
        "comment": "",
        **fields,
    }


def record_action(store: Store, tenant: str, actor: str, action: AuditAction, **fields: str) -> AuditEntry:
    row = _audit_row(tenant, actor, action, **fields)
    store.insert("audit_log", [[row[column] for column in AUDIT_COLUMNS]], AUDIT_COLUMNS)
    return audit_entry(row)


def acknowledge(
    store: Store, workflows: Workflows, tenant: str, actor: str, request: AcknowledgeRequest
) -> AcknowledgeResult:
    """Record ``actor``'s acknowledgement of a group, and how many open exceptions it covers now."""
    entry = record_action(
        store,
        tenant,
        actor,
        "acknowledge",
        kind=request.kind,
        system=request.system,
        workflow=request.workflow,
        comment=request.comment,
        operator=request.operator,
    )
    report = open_exceptions(
        store,
        workflows,
        tenant,
        ExceptionFilters(kind=request.kind, system=request.system, workflow=request.workflow),
        dt.datetime.now(dt.UTC),
        limit=0,
    )
    return AcknowledgeResult(entry=entry, covered=sum(group.acknowledged for group in report.groups))


class ActionRefused(ValueError):
    """The transaction is already in the state the action asks for."""


def transaction_of(store: Store, tenant: str, key: str) -> str | None:
    """The transaction a correlation id or alias belongs to."""
    rows = store.query(RESOLVE_KEY, {"tenant": tenant, "key": key}).result_rows
    return rows[0][0] if rows else None


def resolution_of(store: Store, tenant: str, transaction: str) -> AuditEntry | None:
    """The latest resolve or reopen of a transaction, if any."""
    rows = store.rows(LATEST_RESOLUTION, {"tenant": tenant, "transaction": transaction})
    return audit_entry(rows[0]) if rows else None


def change_resolution(
    store: Store,
    tenant: str,
    actor: str,
    transaction: str,
    key: str,
    action: AuditAction,
    request: CommentRequest,
) -> AuditEntry:
    """Resolve or reopen; ActionRefused when it is already resolved (resolve) or not (reopen)."""
    with _actions:
        latest = resolution_of(store, tenant, transaction)
        resolved = latest is not None and latest.action == "resolve"
        if action == "resolve" and resolved:
            assert latest is not None
            raise ActionRefused(f"already resolved by {latest.actor} at {latest.at.isoformat()}")
        if action == "reopen" and not resolved:
            raise ActionRefused("it is not resolved")
        return record_action(
            store,
            tenant,
            actor,
            action,
            transaction_id=transaction,
            correlation_id=key,
            comment=request.comment,
            operator=request.operator,
        )


def audit_page(
    store: Store,
    tenant: str,
    action: str,
    transaction: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    after: cursors.Position | None,
) -> AuditPage:
    """The operators' actions, newest first, a page after ``after``."""
    after_time, after_id = after or cursors.FIRST_PAGE
    rows = store.rows(
        AUDIT,
        {
            "tenant": tenant,
            "action": action,
            "transaction": transaction,
            "since": since or EARLIEST,
            "until": until or LATEST,
            "after_time": after_time,
            "after_id": after_id,
            "limit": limit + 1,
        },
    )
    items = [audit_entry(row) for row in rows[:limit]]
    return AuditPage(
        items=items, next_cursor=cursors.encode(items[-1].at, items[-1].id) if len(rows) > limit else None
    )


def group_transactions(
    store: Store, workflows: Workflows, tenant: str, filters: ExceptionFilters
) -> list[str]:
    """Every transaction behind an exception group's open exceptions, newest error first."""
    sql, parameters = _open_exceptions(store, workflows, tenant, filters, dt.datetime.now(dt.UTC))
    rows = store.rows(sql, parameters)
    return list(dict.fromkeys(row["transaction_id"] for row in rows))


def act_in_bulk(
    store: Store, tenant: str, actor: str, keys: list[str], request: BulkActionRequest
) -> BulkActionResult:
    """Resolve or acknowledge each transaction ``keys`` name, one audit entry each; a key that names
    no transaction, or one already resolved (resolve), or named twice, is answered and skipped."""
    found = {key: transaction_of(store, tenant, key) for key in dict.fromkeys(keys)}
    with _actions:
        latest = {
            row["transaction_id"]: row
            for row in store.rows(
                LATEST_RESOLUTIONS,
                {"tenant": tenant, "transactions": sorted({t for t in found.values() if t})},
            )
        }
        now = dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        items: list[BulkItemResult] = []
        asked: dict[str, str] = {}  # transaction: the first key of this request that named it
        for key in keys:
            transaction = found[key]
            reason = None
            if transaction is None:
                items.append(_skipped(key, "not_found", f"no transaction has the key {key!r}"))
                continue
            if transaction in asked:
                reason = f"the same transaction as {asked[transaction]!r}, earlier in this request"
            elif request.action == "resolve" and latest.get(transaction, {}).get("latest") == "resolve":
                done = latest[transaction]
                reason = f"already resolved by {done['by']} at {utc(done['latest_at']).isoformat()}"
            if reason:
                items.append(_skipped(key, "conflict", reason))
                continue
            asked[transaction] = key
            row = _audit_row(
                tenant,
                actor,
                request.action,
                at=now,
                transaction_id=transaction,
                correlation_id=key,
                comment=request.comment,
                operator=request.operator,
            )
            rows.append(row)
            items.append(
                BulkItemResult(correlation_id=key, outcome="done", reason=None, entry=audit_entry(row))
            )
        if rows:  # one insert for all: each transaction still has its own entry
            store.insert(
                "audit_log", [[row[column] for column in AUDIT_COLUMNS] for row in rows], AUDIT_COLUMNS
            )
    return BulkActionResult(
        action=request.action,
        done=sum(item.outcome == "done" for item in items),
        not_found=sum(item.outcome == "not_found" for item in items),
        conflict=sum(item.outcome == "conflict" for item in items),
        items=items,
    )


def _skipped(key: str, outcome: Literal["not_found", "conflict"], reason: str) -> BulkItemResult:
    return BulkItemResult(correlation_id=key, outcome=outcome, reason=reason, entry=None)
