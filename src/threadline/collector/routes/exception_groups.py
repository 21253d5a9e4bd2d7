"""``/api/exceptions``, the operators' actions on them (acknowledge, resolve, reopen; in bulk too),
requests to the owning integrations (request retry) and ``/api/audit``: the routes over
``exception_groups`` and ``retry_requests``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from ..auth import require
from ..http_errors import ApiError
from ..models import (
    MAX_BULK_TRANSACTIONS,
    AcknowledgeRequest,
    AcknowledgeResult,
    AuditAction,
    AuditEntry,
    AuditPage,
    BulkActionRequest,
    BulkActionResult,
    CommentRequest,
    ExceptionKind,
    ExceptionsReport,
)
from ..schema import Problem
from ..service import Collector
from ..state import retry_requests, transactions
from ..state.exception_groups import (
    ActionRefused,
    ExceptionFilters,
    acknowledge,
    act_in_bulk,
    audit_page,
    change_resolution,
    group_transactions,
    open_exceptions,
    transaction_of,
)
from ..state.timeline import step_views, waiting_on_systems
from .dependencies import (
    READING,
    SNAPSHOT_CAUGHT_UP,
    TRANSACTION_PATH,
    After,
    AsOf,
    CollectorDep,
    Moment,
    PrincipalDep,
    TenantDep,
    TransactionKey,
    as_of_or_now,
)

router = APIRouter(prefix="/api", tags=["exceptions"], dependencies=READING)
# Every operator's action changes what others see: reading is not enough to act.
actions = APIRouter(prefix="/api", tags=["exceptions"], dependencies=[Depends(require("act"))])


@router.get("/exceptions", response_model=ExceptionsReport, dependencies=[SNAPSHOT_CAUGHT_UP])
async def list_exceptions(
    collector: CollectorDep,
    tenant: TenantDep,
    kind: Annotated[ExceptionKind | None, Query(description="Only this error kind")] = None,
    system: Annotated[str, Query(description="Only errors in this system")] = "",
    workflow: Annotated[str, Query(description="Only this workflow's transactions")] = "",
    as_of: AsOf = None,
    limit: Annotated[
        int, Query(ge=0, le=1000, description="Items listed per group (counts stay exact)")
    ] = 100,
) -> ExceptionsReport:
    """Open exceptions grouped by error kind and system, with counts and the transactions behind them."""
    return await run_in_threadpool(
        open_exceptions,
        collector.store,
        collector.workflows,
        tenant,
        ExceptionFilters(kind=kind or "", system=system, workflow=workflow),
        as_of_or_now(as_of),
        limit,
    )


@actions.post("/exceptions/ack", response_model=AcknowledgeResult, status_code=201)
async def acknowledge_exceptions(
    collector: CollectorDep, tenant: TenantDep, principal: PrincipalDep, body: AcknowledgeRequest
) -> AcknowledgeResult:
    """Acknowledge a group of exceptions (kind and system, optionally one workflow), with a comment."""
    return await run_in_threadpool(
        acknowledge, collector.store, collector.workflows, tenant, principal.name, body
    )


async def _change(
    collector: Collector, tenant: str, actor: str, key: str, action: AuditAction, body: CommentRequest
) -> AuditEntry:
    transaction = await run_in_threadpool(transaction_of, collector.store, tenant, key)
    if transaction is None:
        raise ApiError(404, "not_found", f"no transaction has the key {key!r}")
    try:
        entry = await run_in_threadpool(
            change_resolution, collector.store, tenant, actor, transaction, key, action, body
        )
    except ActionRefused as refused:
        raise ApiError(409, "conflict", f"{key!r} was not {action}d: {refused}") from None
    # Alerts follow an operator's action now rather than at the next scheduled evaluation.
    collector.alerting.request_evaluation()
    return entry


@actions.post(
    TRANSACTION_PATH + "/resolve", response_model=AuditEntry, status_code=201, responses={404: {}, 409: {}}
)
async def resolve_transaction(
    collector: CollectorDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    key: TransactionKey,
    body: CommentRequest,
) -> AuditEntry:
    """Mark a transaction resolved, with a comment: it leaves the attention set until reopened."""
    return await _change(collector, tenant, principal.name, key, "resolve", body)


@actions.post(
    TRANSACTION_PATH + "/reopen", response_model=AuditEntry, status_code=201, responses={404: {}, 409: {}}
)
async def reopen_transaction(
    collector: CollectorDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    key: TransactionKey,
    body: CommentRequest,
) -> AuditEntry:
    """Undo a resolution, with a comment: the transaction counts again as its state says."""
    return await _change(collector, tenant, principal.name, key, "reopen", body)


@actions.post("/transactions/actions", response_model=BulkActionResult, status_code=200, responses={422: {}})
async def act_on_transactions(
    collector: CollectorDep, tenant: TenantDep, principal: PrincipalDep, body: BulkActionRequest
) -> BulkActionResult:
    """Resolve or acknowledge many transactions (or every one of an exception group) with one
    comment: each gets its own audit entry, and the answer says per transaction what was done."""
    if (body.correlation_ids is None) == (body.exception_group is None):
        raise _unprocessable(
            "correlation_ids", "give either correlation_ids or exception_group (not both, not neither)"
        )
    if body.exception_group is not None:
        group = body.exception_group
        keys = await run_in_threadpool(
            group_transactions,
            collector.store,
            collector.workflows,
            tenant,
            ExceptionFilters(kind=group.kind, system=group.system, workflow=group.workflow),
        )
        field = "exception_group"
    else:
        keys, field = body.correlation_ids or [], "correlation_ids"
    if not keys and field == "correlation_ids":
        raise _unprocessable(field, "names no transaction")
    if len(keys) > MAX_BULK_TRANSACTIONS:
        raise _unprocessable(
            field,
            f"holds {len(keys):,} transactions, more than the {MAX_BULK_TRANSACTIONS} a request may act on; "
            "split the request (or narrow the group by workflow)",
        )
    result = await run_in_threadpool(act_in_bulk, collector.store, tenant, principal.name, keys, body)
    if result.done and body.action == "resolve":
        collector.alerting.request_evaluation()
    return result


def _unprocessable(field: str, reason: str) -> ApiError:
    return ApiError(422, "invalid_request", f"{field} {reason}", [Problem(field=field, reason=reason)])


@actions.post(
    TRANSACTION_PATH + "/actions/{name}",
    response_model=AuditEntry,
    status_code=201,
    responses={404: {}, 409: {}},
)
async def request_action(
    collector: CollectorDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    key: TransactionKey,
    name: str,
    body: CommentRequest,
) -> AuditEntry:
    """Ask the integration that owns the transaction's failed or stuck step to retry it (an action
    declared under ``actions:`` in the workflows file); the answer is recorded in the audit trail and
    returned, delivered or not."""
    workflows = collector.workflows
    found = await run_in_threadpool(
        transactions.find, collector.store, workflows, tenant, key, dt.datetime.now(dt.UTC)
    )
    if found is None:
        raise ApiError(404, "not_found", f"no transaction has the key {key!r}")
    summary = found.summary
    views = step_views(workflows.get(summary.workflow), found.events, summary)
    steps = retry_requests.attention_steps(
        summary.state, views, waiting_on_systems(summary.waiting_on, found.events)
    )
    try:
        return await run_in_threadpool(
            retry_requests.request_retry,
            collector.store,
            workflows,
            tenant,
            principal.name,
            (summary.correlation_id, summary.workflow, found.aliases),
            key,
            steps,
            name,
            body,
        )
    except retry_requests.ActionUnavailable as error:
        raise ApiError(404, "not_found", str(error)) from None
    except retry_requests.ActionNotConfigured as error:
        raise ApiError(409, "not_configured", str(error)) from None


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    collector: CollectorDep,
    tenant: TenantDep,
    action: Annotated[
        AuditAction | None, Query(description="acknowledge, resolve, reopen, silence, expire or retry")
    ] = None,
    transaction: Annotated[str, Query(description="Only this transaction (correlation id or alias)")] = "",
    since: Annotated[Moment | None, Query(description="Only actions at or after this time")] = None,
    until: Annotated[Moment | None, Query(description="Only actions at or before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: After = None,
) -> AuditPage:
    """The operators' actions, newest first: who (key and person), when, what and why."""
    transaction_id = ""
    if transaction:
        found = await run_in_threadpool(transaction_of, collector.store, tenant, transaction)
        transaction_id = found or transaction
    return await run_in_threadpool(
        audit_page, collector.store, tenant, action or "", transaction_id, since, until, limit, after
    )
