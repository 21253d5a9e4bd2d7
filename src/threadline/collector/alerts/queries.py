"""What ``/api/alerts`` answers: alerts, newest first, with their notifications and delivery attempts,
read from ``records`` and mapped to the API's shapes (never a receiver's URL)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import orjson

from .. import cursors
from ..alert_rules import PER_TRANSACTION
from ..models import (
    AlertDetail,
    AlertPage,
    AlertStatus,
    AlertView,
    DeliveryAttemptView,
    NotificationStatus,
    NotificationView,
)
from ..state.transactions import RESOLVE_KEY
from ..storage import Store
from . import records
from .payloads import alert_link, transaction_link
from .records import AlertFilters, AlertRecord, DeliveryRecord, NotificationRecord


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


def page(
    store: Store,
    tenant: str,
    filters: AlertFilters,
    after: cursors.Position | None,
    limit: int,
    url: str,
) -> AlertPage:
    """A page of alerts after ``after``, with the firing and resolved counts; ``url``: the dashboard's."""
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
        next_cursor=cursors.encode(shown[-1].fired_at, shown[-1].alert_id) if len(items) > limit else None,
    )


def detail(store: Store, tenant: str, alert: str, url: str) -> AlertDetail | None:
    """One alert, with every notification and every delivery attempt; None if there is none."""
    record = records.one_alert(store, tenant, alert)
    if record is None:
        return None
    notifications = records.notifications_of(store, tenant, [alert])
    history: dict[str, list[DeliveryRecord]] = {}
    for attempt in records.deliveries_of(store, tenant, [n.notification_id for n in notifications]):
        history.setdefault(attempt.notification_id, []).append(attempt)
    context = orjson.loads(record.context) if record.context else {}
    return AlertDetail(**_alert_view(record, notifications, url, history), context=context)
