"""Alert state, the notification outbox and delivery attempts, in ClickHouse.

Everything alerting knows lives in the store, so a restart picks up where the last process left
off: a firing alert is not fired again, and a notification not yet delivered is still delivered.

- ``alerts``: one row per alert (a rule firing for a subject, until it resolves), replaced by a
  higher ``version`` when it resolves. Its id is derived from (tenant, rule, subject, episode), the
  episode being how many alerts that rule had before for that subject: firing again after a crash
  between writing the notifications and the alert yields the same id, never a second alert.
- ``alert_notifications``: what each receiver is to be told, one row per alert, event
  (firing/resolved) and receiver, with an id derived from those three. ``groups`` lists it in its
  group's next notification (``grouped``, version 1), so a row written again at version 0 never
  undoes that.
- ``alert_deliveries``: every attempt, kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from .. import cursors
from ..state.transactions import utc
from ..storage import Store

ALERT_COLUMNS = (
    "tenant",
    "alert_id",
    "rule",
    "condition",
    "severity",
    "workflow",
    "subject",
    "status",
    "summary",
    "transactions",
    "context",
    "fired_at",
    "resolved_at",
    "resolution",
    "version",
)
# A notification's receiver, content and delivery: alike in this outbox and in ``groups``'.
OUTBOX_STATE = (
    "receiver",
    "receiver_type",
    "event",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "delivered_at",
    "version",
)
NOTIFICATION_COLUMNS = ("tenant", "notification_id", "alert_id", "rule", *OUTBOX_STATE)
DELIVERY_COLUMNS = ("tenant", "notification_id", "attempt", "at", "ok", "status_code", "error", "duration_ms")

TENANTS = """
SELECT DISTINCT tenant FROM events
UNION DISTINCT
SELECT DISTINCT tenant FROM alerts FINAL WHERE status = 'firing'
"""

FIRING = """
SELECT * FROM alerts FINAL
WHERE tenant = {tenant:String} AND status = 'firing'
"""

EPISODES = """
SELECT rule, subject, count() AS episodes
FROM alerts FINAL
WHERE tenant = {tenant:String} AND (rule, subject) IN {keys:Array(Tuple(String, String))}
GROUP BY rule, subject
"""

PENDING = """
SELECT * FROM alert_notifications FINAL
WHERE status = 'pending'
ORDER BY created_at, notification_id
"""

ALERT_FILTERS = """
WHERE tenant = {tenant:String}
  AND (empty({status:String}) OR status = {status:String})
  AND (empty({rule:String}) OR rule = {rule:String})
  AND (empty({severity:String}) OR severity = {severity:String})
  AND (empty({workflow:String}) OR workflow = {workflow:String})
  AND (empty({transaction:String}) OR has(transactions, {transaction:String}))
"""

LIST_ALERTS = f"""
SELECT *
FROM
(
    SELECT *, count() OVER () AS total
    FROM alerts FINAL
    {ALERT_FILTERS}
)
WHERE (fired_at, alert_id) < ({{after_time:DateTime64(6, 'UTC')}}, {{after_id:String}})
ORDER BY fired_at DESC, alert_id DESC
LIMIT {{limit:UInt32}}
"""

STATUS_COUNTS = """
SELECT status, count() AS alerts FROM alerts FINAL WHERE tenant = {tenant:String} GROUP BY status
"""

ONE_ALERT = """
SELECT * FROM alerts FINAL WHERE tenant = {tenant:String} AND alert_id = {alert_id:String}
"""

NOTIFICATIONS_OF = """
SELECT * FROM alert_notifications FINAL
WHERE tenant = {tenant:String} AND alert_id IN {alert_ids:Array(String)}
ORDER BY created_at, event, receiver
"""

DELIVERIES_OF = """
SELECT * FROM alert_deliveries FINAL
WHERE tenant = {tenant:String} AND notification_id IN {notification_ids:Array(String)}
ORDER BY notification_id, attempt
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def alert_id(tenant: str, rule: str, subject: str, episode: int) -> str:
    return _digest("alert", tenant, rule, subject, str(episode))


def notification_id(alert: str, event: str, receiver: str) -> str:
    return _digest("notification", alert, event, receiver)


class _Versions:
    """Strictly increasing versions (nanoseconds), even if the wall clock steps back."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return self._last


next_version = _Versions().next


@dataclass(frozen=True)
class AlertRecord:
    tenant: str
    alert_id: str
    rule: str
    condition: str
    severity: str
    workflow: str
    subject: str
    status: str  # firing | resolved
    summary: str
    transactions: tuple[str, ...]
    context: str  # JSON: the payload sent when it fired
    fired_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str
    version: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> AlertRecord:
        values = {name: row[name] for name in ALERT_COLUMNS}
        values["transactions"] = tuple(row["transactions"])
        values["fired_at"] = utc(row["fired_at"])
        values["resolved_at"] = utc(row["resolved_at"]) if row["resolved_at"] else None
        return cls(**values)

    def resolved(self, at: dt.datetime, resolution: str) -> AlertRecord:
        return replace(self, status="resolved", resolved_at=at, resolution=resolution, version=next_version())


@dataclass(frozen=True)
class NotificationRecord:
    tenant: str
    notification_id: str
    alert_id: str
    rule: str
    receiver: str
    receiver_type: str
    event: str  # firing | resolved
    payload: str  # JSON, the generic webhook form; rendered per receiver type when sent
    status: (
        str  # pending (its group not yet told) | grouped (told, see groups) | silenced; older: delivered...
    )
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    version: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> NotificationRecord:
        values = {name: row[name] for name in NOTIFICATION_COLUMNS}
        for name in ("next_attempt_at", "created_at"):
            values[name] = utc(row[name])
        values["delivered_at"] = utc(row["delivered_at"]) if row["delivered_at"] else None
        return cls(**values)


@dataclass(frozen=True)
class DeliveryRecord:
    tenant: str
    notification_id: str
    attempt: int
    at: dt.datetime
    ok: bool
    status_code: int  # 0: no answer
    error: str
    duration_ms: float


def table_rows(records: Iterable[Any], columns: Sequence[str]) -> list[list[Any]]:
    """Dataclasses as rows of ``columns`` (tuples as arrays). Read field by field: ``asdict`` copies
    every element of every tuple (a fifth of an evaluation's time with thousands of alerts)."""
    return [[_column_value(getattr(record, column)) for column in columns] for record in records]


def _column_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- the evaluator's side ---------------------------------------------------------------------


def tenants(store: Store) -> list[str]:
    return sorted(row[0] for row in store.query(TENANTS).result_rows)


def firing(store: Store, tenant: str) -> dict[tuple[str, str], AlertRecord]:
    return {
        (record.rule, record.subject): record
        for record in (AlertRecord.of(row) for row in store.rows(FIRING, {"tenant": tenant}))
    }


def episodes(store: Store, tenant: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many alerts each (rule, subject) has had before."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = store.rows(EPISODES, {"tenant": tenant, "keys": wanted})
    return {(row["rule"], row["subject"]): row["episodes"] for row in rows}


def save_alerts(store: Store, records: Sequence[AlertRecord]) -> None:
    store.insert("alerts", table_rows(records, ALERT_COLUMNS), ALERT_COLUMNS)


def save_notifications(store: Store, records: Sequence[NotificationRecord]) -> None:
    store.insert("alert_notifications", table_rows(records, NOTIFICATION_COLUMNS), NOTIFICATION_COLUMNS)


def save_delivery(store: Store, record: DeliveryRecord) -> None:
    store.insert("alert_deliveries", table_rows([record], DELIVERY_COLUMNS), DELIVERY_COLUMNS)


# --- the dispatcher's side --------------------------------------------------------------------


def pending(store: Store) -> list[NotificationRecord]:
    """Every notification still to be sent, oldest first, of every tenant."""
    return [NotificationRecord.of(row) for row in store.rows(PENDING)]


# --- the API's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilters:
    status: str = ""
    rule: str = ""
    severity: str = ""
    workflow: str = ""
    transaction: str = ""


def list_alerts(
    store: Store,
    tenant: str,
    filters: AlertFilters,
    after: cursors.Position | None,
    limit: int,
) -> tuple[list[AlertRecord], int]:
    """A page of alerts, newest first, and how many match the filters in all."""
    after_time, after_id = after or cursors.FIRST_PAGE
    parameters = {
        "tenant": tenant,
        **asdict(filters),
        "after_time": after_time,
        "after_id": after_id,
        "limit": limit,
    }
    rows = store.rows(LIST_ALERTS, parameters)
    return [AlertRecord.of(row) for row in rows], rows[0]["total"] if rows else 0


def status_counts(store: Store, tenant: str) -> dict[str, int]:
    return {row["status"]: row["alerts"] for row in store.rows(STATUS_COUNTS, {"tenant": tenant})}


def one_alert(store: Store, tenant: str, alert: str) -> AlertRecord | None:
    rows = store.rows(ONE_ALERT, {"tenant": tenant, "alert_id": alert})
    return AlertRecord.of(rows[0]) if rows else None


def notifications_of(store: Store, tenant: str, alerts: Sequence[str]) -> list[NotificationRecord]:
    if not alerts:
        return []
    rows = store.rows(NOTIFICATIONS_OF, {"tenant": tenant, "alert_ids": list(alerts)})
    return [NotificationRecord.of(row) for row in rows]


def deliveries_of(store: Store, tenant: str, notifications: Sequence[str]) -> list[DeliveryRecord]:
    if not notifications:
        return []
    rows = store.rows(DELIVERIES_OF, {"tenant": tenant, "notification_ids": list(notifications)})
    return [
        DeliveryRecord(
            **{name: row[name] for name in DELIVERY_COLUMNS} | {"at": utc(row["at"]), "ok": bool(row["ok"])}
        )
        for row in rows
    ]
