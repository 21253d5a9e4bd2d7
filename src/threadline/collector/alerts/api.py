"""``/api/alerts``: what the dashboard's Alerts page shows (firing, resolved, history, deliveries).

- ``GET /api/alerts?status=&rule=&severity=&workflow=&transaction=&limit=&cursor=``: alerts, newest
  first, each with its notifications (receiver, status, attempts, last error);
- ``GET /api/alerts/rules``: the rules and receivers in force (never a receiver's URL);
- ``GET /api/alerts/{id}``: one alert, with the payload it fired with and every delivery attempt.

All need the ``read`` role and answer for the caller's tenant only.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from ..admission import admit_read
from ..auth import require
from ..errors import ApiError
from ..models import (
    AlertDetail,
    AlertPage,
    AlertRules,
    AlertRuleView,
    AlertStatus,
    AlertView,
    DeliveryAttemptView,
    NotificationStatus,
    NotificationView,
    ReceiverView,
)
from ..runtime import Collector, get_collector
from ..schema import Problem, in_storable_range
from ..storage import Store
from ..transactions import RESOLVE_KEY, utc
from . import records
from .payloads import alert_link, transaction_link
from .records import AlertFilters, AlertRecord, DeliveryRecord, NotificationRecord
from .rules import PER_TRANSACTION, Severity
from .settings import AlertSettings

router = APIRouter(
    prefix="/api/alerts", tags=["alerts"], dependencies=[Depends(require("read")), Depends(admit_read)]
)
CollectorDep = Annotated[Collector, Depends(get_collector)]


def _settings(collector: Collector) -> AlertSettings:
    return collector.alerting.settings


def _notification_view(record: NotificationRecord, history: list[DeliveryRecord]) -> NotificationView:
    return NotificationView(
        id=record.notification_id,
        receiver=record.receiver,
        receiver_type=record.receiver_type,
        event=cast(AlertStatus, record.event),
        status=cast(NotificationStatus, record.status),
        attempts=record.attempts,
        last_error=record.last_error,
        created_at=record.created_at,
        next_attempt_at=record.next_attempt_at if record.status == "pending" else None,
        delivered_at=record.delivered_at,
        history=[
            DeliveryAttemptView(
                attempt=attempt.attempt,
                at=attempt.at,
                ok=attempt.ok,
                status_code=attempt.status_code or None,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
            for attempt in history
        ],
    )


def _alert_view(
    record: AlertRecord,
    notifications: list[NotificationRecord],
    dashboard_url: str,
    history: dict[str, list[DeliveryRecord]] | None = None,
) -> dict[str, Any]:  # AlertView's fields, validated by it (a stored status becomes AlertStatus)
    link = (
        transaction_link(dashboard_url, record.subject)
        if record.condition in PER_TRANSACTION
        else alert_link(dashboard_url, record.alert_id)
    )
    return {
        "id": record.alert_id,
        "rule": record.rule,
        "condition": record.condition,
        "severity": record.severity,
        "workflow": record.workflow or None,
        "subject": record.subject,
        "status": record.status,
        "summary": record.summary,
        "fired_at": record.fired_at,
        "resolved_at": record.resolved_at,
        "resolution": record.resolution or None,
        "transactions": list(record.transactions),
        "link": link,
        "notifications": [
            _notification_view(n, (history or {}).get(n.notification_id, [])) for n in notifications
        ],
    }


def _encode_cursor(record: AlertRecord) -> str:
    raw = orjson.dumps([record.fired_at.isoformat(), record.alert_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        moment, key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return in_storable_range(utc(dt.datetime.fromisoformat(moment))), str(key)
    except (ValueError, TypeError):
        reason = "is not a cursor this API handed out"
        raise ApiError(
            400, "invalid_request", f"cursor {reason}", [Problem(field="cursor", reason=reason)]
        ) from None


def _page(
    store: Store,
    tenant: str,
    filters: AlertFilters,
    after: tuple[dt.datetime, str] | None,
    limit: int,
    url: str,
) -> AlertPage:
    if filters.transaction:  # a correlation id or an alias: alerts keep the transaction's own id
        found = store.query(RESOLVE_KEY, {"tenant": tenant, "key": filters.transaction}).result_rows
        if found:
            filters = replace(filters, transaction=found[0][0])
    items, total = records.list_alerts(store, tenant, filters, after, limit + 1)
    shown = items[:limit]
    by_alert: dict[str, list[NotificationRecord]] = {}
    for notification in records.notifications_of(store, tenant, [item.alert_id for item in shown]):
        by_alert.setdefault(notification.alert_id, []).append(notification)
    counts = records.status_counts(store, tenant)
    return AlertPage(
        firing=counts.get("firing", 0),
        resolved=counts.get("resolved", 0),
        total=total,
        items=[AlertView(**_alert_view(item, by_alert.get(item.alert_id, []), url)) for item in shown],
        next_cursor=_encode_cursor(shown[-1]) if len(items) > limit else None,
    )


@router.get("", response_model=AlertPage)
async def list_alerts(
    collector: CollectorDep,
    request: Request,
    status: Annotated[AlertStatus | None, Query(description="firing or resolved; default both")] = None,
    rule: str = "",
    severity: Annotated[Severity | None, Query(description="critical, warning or info")] = None,
    workflow: str = "",
    transaction: Annotated[str, Query(description="Only alerts about this transaction (key or alias)")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> AlertPage:
    """Alerts, newest first (firing and resolved: the history), with their notifications."""
    filters = AlertFilters(
        status=status or "", rule=rule, severity=severity or "", workflow=workflow, transaction=transaction
    )
    after = _decode_cursor(cursor) if cursor else None
    return await run_in_threadpool(
        _page,
        collector.store,
        collector.tenant_of(request),
        filters,
        after,
        limit,
        _settings(collector).dashboard_url,
    )


@router.get("/rules", response_model=AlertRules)
async def list_rules(collector: CollectorDep, request: Request) -> AlertRules:
    """The alert rules and receivers in force, when they were last evaluated, and since when each
    watches (what already met it then is summarised, not alerted)."""
    rules = collector.workflows.alerts
    watching = collector.alerting.watching(collector.tenant_of(request))
    receivers = {receiver.name: receiver for rule in rules for receiver in rule.receivers}
    return AlertRules(
        interval_seconds=_settings(collector).interval,
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


def _detail(store: Store, tenant: str, alert: str, url: str) -> AlertDetail | None:
    record = records.one_alert(store, tenant, alert)
    if record is None:
        return None
    notifications = records.notifications_of(store, tenant, [alert])
    history: dict[str, list[DeliveryRecord]] = {}
    for attempt in records.deliveries_of(store, tenant, [n.notification_id for n in notifications]):
        history.setdefault(attempt.notification_id, []).append(attempt)
    context = orjson.loads(record.context) if record.context else {}
    return AlertDetail(**_alert_view(record, notifications, url, history), context=context)


@router.get("/{alert_id}", response_model=AlertDetail, responses={404: {}})
async def get_alert(
    collector: CollectorDep,
    request: Request,
    alert_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> AlertDetail:
    """One alert: the payload it fired with, and every notification with every delivery attempt."""
    detail = await run_in_threadpool(
        _detail, collector.store, collector.tenant_of(request), alert_id, _settings(collector).dashboard_url
    )
    if detail is None:
        raise ApiError(404, "not_found", f"no alert has the id {alert_id!r}")
    return detail
