"""``/api/alerts``: what the dashboard's Alerts page shows (firing, resolved, history, deliveries).

- ``GET /api/alerts?status=&rule=&severity=&workflow=&transaction=&limit=&cursor=``: alerts, newest
  first, each with its notifications (receiver, status, attempts, last error);
- ``GET /api/alerts/rules``: the rules and receivers in force (never a receiver's URL);
- ``GET /api/alerts/{id}``: one alert, with the payload it fired with and every delivery attempt.

All need the ``read`` role and answer for the caller's tenant only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from ..alert_rules import Severity
from ..alerts import queries
from ..alerts.records import AlertFilters
from ..http_errors import ApiError
from ..models import AlertDetail, AlertPage, AlertRules, AlertRuleView, AlertStatus, ReceiverView
from .dependencies import READING, After, CollectorDep, TenantDep

router = APIRouter(prefix="/api/alerts", tags=["alerts"], dependencies=READING)


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
