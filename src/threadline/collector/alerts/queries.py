"""What ``/api/alerts`` answers: alerts, newest first, with their notifications and delivery attempts,
read from ``records`` and mapped to the API's shapes (never a receiver's URL); the notification
groups (``groups``) and the silences (``silences``).

An alert's notifications are the group notifications that listed it, and its rows not yet told of
(``pending``, waiting for the group) or held back by a silence (``silenced``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any, cast

import orjson

from .. import cursors
from ..alert_rules import PER_TRANSACTION
from ..models import (
    AlertDetail,
    AlertGroups,
    AlertGroupView,
    AlertPage,
    AlertStatus,
    AlertView,
    DeliveryAttemptView,
    NotificationStatus,
    NotificationView,
)
from ..state.transactions import RESOLVE_KEY
from ..storage import Store
from . import groups, records, silences
from .groups import GroupNotification
from .payloads import alert_link, labels_of, stored_labels, transaction_link
from .records import AlertFilters, AlertRecord, DeliveryRecord, NotificationRecord
from .silences import Silence


def _notification_view(
    record: NotificationRecord | GroupNotification, history: list[DeliveryRecord], event: str
) -> NotificationView:
    return NotificationView(
        id=record.notification_id,
        receiver=record.receiver,
        receiver_type=record.receiver_type,
        event=cast(AlertStatus, event),
        status=cast(NotificationStatus, record.status),
        group=record.group_key if isinstance(record, GroupNotification) else None,
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


def _told(record: AlertRecord, notification: GroupNotification) -> str:
    """Which of the alert's events a group notification told of."""
    resolved = record.resolved_at is not None and notification.created_at >= record.resolved_at
    return "resolved" if resolved else "firing"


class _Notifications:
    """The notifications of some alerts: their own rows not yet told, and the group notifications
    that listed them."""

    def __init__(self, store: Store, tenant: str, alerts: list[str]) -> None:
        self.rows: dict[str, list[NotificationRecord]] = {}
        for row in records.notifications_of(store, tenant, alerts):
            if row.status != "grouped":
                self.rows.setdefault(row.alert_id, []).append(row)
        self.listing: dict[str, list[GroupNotification]] = {}
        for notification in groups.listing(store, tenant, alerts):
            for alert in notification.alerts:
                self.listing.setdefault(alert, []).append(notification)

    @property
    def ids(self) -> list[str]:
        own = [n.notification_id for rows in self.rows.values() for n in rows]
        return own + list({n.notification_id for rows in self.listing.values() for n in rows})

    def views(
        self, record: AlertRecord, history: dict[str, list[DeliveryRecord]] | None = None
    ) -> list[NotificationView]:
        history = history or {}
        views = [
            _notification_view(n, history.get(n.notification_id, []), _told(record, n))
            for n in self.listing.get(record.alert_id, [])
        ]
        views += [
            _notification_view(n, history.get(n.notification_id, []), n.event)
            for n in self.rows.get(record.alert_id, [])
        ]
        return sorted(views, key=lambda view: (view.created_at, view.event, view.receiver))


def labels(record: AlertRecord) -> dict[str, str]:
    return stored_labels(record) or labels_of(record, None, None)


def _alert_view(
    record: AlertRecord,
    notifications: list[NotificationView],
    dashboard_url: str,
    silenced: list[Silence],
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
        "labels": labels(record),
        "silenced_by": silences.matching(silenced, labels(record)) if record.status == "firing" else [],
        "notifications": notifications,
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
    notifications = _Notifications(store, tenant, [item.alert_id for item in shown])
    counts = records.status_counts(store, tenant)
    silenced = silences.in_force(store, dt.datetime.now(dt.UTC)).get(tenant, [])
    return AlertPage(
        firing=counts.get("firing", 0),
        resolved=counts.get("resolved", 0),
        total=total,
        items=[AlertView(**_alert_view(item, notifications.views(item), url, silenced)) for item in shown],
        next_cursor=cursors.encode(shown[-1].fired_at, shown[-1].alert_id) if len(items) > limit else None,
    )


def detail(store: Store, tenant: str, alert: str, url: str) -> AlertDetail | None:
    """One alert, with every notification and every delivery attempt; None if there is none."""
    record = records.one_alert(store, tenant, alert)
    if record is None:
        return None
    notifications = _Notifications(store, tenant, [alert])
    history: dict[str, list[DeliveryRecord]] = {}
    for attempt in records.deliveries_of(store, tenant, notifications.ids):
        history.setdefault(attempt.notification_id, []).append(attempt)
    context = orjson.loads(record.context) if record.context else {}
    silenced = silences.in_force(store, dt.datetime.now(dt.UTC)).get(tenant, [])
    views = notifications.views(record, history)
    return AlertDetail(**_alert_view(record, views, url, silenced), context=context)


def notification_groups(store: Store, tenant: str) -> AlertGroups:
    """The tenant's notification groups (each receiver's, once it was first told), firing first."""
    items = []
    for group in groups.groups_of(store, tenant):
        grouping = group.settings
        items.append(
            AlertGroupView(
                key=group.group_key,
                receiver=group.receiver,
                labels=dict(group.labels),
                firing=len(group.firing),
                firing_alerts=list(group.firing),
                notifications=group.notifications,
                last_notified_at=group.last_notified_at,
                group_wait_seconds=grouping.group_wait_s,
                group_interval_seconds=grouping.group_interval_s,
                repeat_interval_seconds=grouping.repeat_interval_s,
            )
        )
    return AlertGroups(items=items)
