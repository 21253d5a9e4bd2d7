"""``/api/alerts``: what the dashboard's Alerts page shows (firing, resolved, history, deliveries).

- ``GET /api/alerts?status=&rule=&severity=&workflow=&transaction=&limit=&cursor=``: alerts, newest
  first, each with its notifications (receiver, status, attempts, last error);
- ``GET /api/alerts/rules``: the rules and receivers in force (never a receiver's URL);
- ``GET /api/alerts/groups``: the notification groups (receiver, labels, firing, last notified);
- ``GET /api/alerts/silences``, ``POST /api/alerts/silences`` (set one),
  ``POST /api/alerts/silences/{id}/expire`` (end it now);
- ``GET /api/alerts/{id}``: one alert, with the payload it fired with and every delivery attempt.

Reading needs the ``read`` role, setting and expiring a silence the ``act`` role (an operator's
action, audited). Every answer is for the caller's tenant only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from ..alert_rules import Severity
from ..alerts import queries, silences
from ..alerts.records import AlertFilters
from ..auth import require
from ..http_errors import ApiError
from ..models import (
    AlertDetail,
    AlertGroups,
    AlertPage,
    AlertRules,
    AlertRuleView,
    AlertStatus,
    CommentRequest,
    ReceiverView,
    SilenceRequest,
    Silences,
    SilenceView,
)
from ..schema import Problem
from .dependencies import READING, After, CollectorDep, PrincipalDep, TenantDep

router = APIRouter(prefix="/api/alerts", tags=["alerts"], dependencies=READING)
# Silencing changes what others are told: reading is not enough to do it.
actions = APIRouter(prefix="/api/alerts", tags=["alerts"], dependencies=[Depends(require("act"))])
SilenceId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=AlertPage)
async def list_alerts(
    collector: CollectorDep,
    tenant: TenantDep,
    after: After,
    status: Annotated[AlertStatus | None, Query(description="firing or resolved; default both")] = None,
    rule: str = "",
    severity: Annotated[Severity | None, Query(description="critical, warning or info")] = None,
    workflow: str = "",
    transaction: Annotated[str, Query(description="Only alerts about this transaction (key or alias)")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    """Alerts, newest first (firing and resolved: the history), with their notifications."""
    filters = AlertFilters(
        status=status or "", rule=rule, severity=severity or "", workflow=workflow, transaction=transaction
    )
    return await run_in_threadpool(
        queries.page,
        collector.store,
        tenant,
        filters,
        after,
        limit,
        collector.alerting.settings.dashboard_url,
    )


@router.get("/rules", response_model=AlertRules)
async def list_rules(collector: CollectorDep, tenant: TenantDep) -> AlertRules:
    """The alert rules and receivers in force, when they were last evaluated, and since when each
    watches (what already met it then is summarised, not alerted)."""
    rules = collector.workflows.alerts
    watching = collector.alerting.watching(tenant)
    receivers = {receiver.name: receiver for rule in rules for receiver in rule.receivers}
    return AlertRules(
        interval_seconds=collector.alerting.settings.interval,
        last_evaluation=collector.alerting.last_evaluation,
        rules=[
            AlertRuleView(
                name=rule.name,
                when=rule.when,
                severity=rule.severity,
                workflow=rule.workflow,
                description=rule.description,
                per_transaction=rule.per_transaction,
                parameters=rule.parameters(),
                dimensions=dict(rule.dimensions),
                receivers=[receiver.name for receiver in rule.receivers],
                watching_since=watch.since if (watch := watching.get(rule.name)) else None,
                already_holding=watch.already_holding if watch else 0,
                history=watch.summary if watch else None,
                history_transactions=list(watch.transactions) if watch else [],
            )
            for rule in rules
        ],
        receivers=[
            ReceiverView(
                name=receiver.name,
                type=receiver.type,
                target=receiver.target,
                configured=receiver.resolve_url() is not None,
            )
            for receiver in sorted(receivers.values(), key=lambda receiver: receiver.name)
        ],
    )


@router.get("/groups", response_model=AlertGroups)
async def list_groups(collector: CollectorDep, tenant: TenantDep) -> AlertGroups:
    """The notification groups: per receiver and group_by labels, what fires and when it was last told."""
    return await run_in_threadpool(queries.notification_groups, collector.store, tenant)


@router.get("/silences", response_model=Silences)
async def list_silences(collector: CollectorDep, tenant: TenantDep) -> Silences:
    """The silences, those in force or to come first, then the ended ones, latest first."""
    now = dt.datetime.now(dt.UTC)
    found = await run_in_threadpool(silences.listed, collector.store, tenant, now)
    return Silences(items=[silence.view(now) for silence in found])


@actions.post("/silences", response_model=SilenceView, status_code=201)
async def create_silence(
    collector: CollectorDep, tenant: TenantDep, principal: PrincipalDep, body: SilenceRequest
) -> SilenceView:
    """Silence the alerts matching every matcher from starts_at (default now) until ends_at: they
    still fire and show, but send nothing. A system's maintenance window: a system matcher, a later start."""
    now = dt.datetime.now(dt.UTC)
    try:
        silence = await run_in_threadpool(silences.create, collector.store, tenant, principal.name, body, now)
    except silences.SilenceRefused as refused:
        problem = Problem(field=refused.field, reason=refused.reason)
        raise ApiError(400, "invalid_request", str(refused), [problem]) from None
    return silence.view(now)


@actions.post("/silences/{silence_id}/expire", response_model=SilenceView, responses={404: {}, 409: {}})
async def expire_silence(
    collector: CollectorDep,
    tenant: TenantDep,
    principal: PrincipalDep,
    silence_id: SilenceId,
    body: CommentRequest,
) -> SilenceView:
    """End a silence now, with a comment: what it held back is notified again from now on."""
    now = dt.datetime.now(dt.UTC)
    try:
        silence = await run_in_threadpool(
            silences.expire, collector.store, tenant, principal.name, silence_id, body, now
        )
    except silences.SilenceEnded as ended:
        raise ApiError(409, "conflict", str(ended)) from None
    if silence is None:
        raise ApiError(404, "not_found", f"no silence has the id {silence_id!r}")
    return silence.view(now)


@router.get("/{alert_id}", response_model=AlertDetail, responses={404: {}})
async def get_alert(
    collector: CollectorDep,
    tenant: TenantDep,
    alert_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> AlertDetail:
    """One alert: the payload it fired with, and every notification with every delivery attempt."""
    detail = await run_in_threadpool(
        queries.detail, collector.store, tenant, alert_id, collector.alerting.settings.dashboard_url
    )
    if detail is None:
        raise ApiError(404, "not_found", f"no alert has the id {alert_id!r}")
    return detail
