"""Notification groups: one notification per group of alerts, throttled, as Alertmanager does.

The evaluator queues, per alert event (firing, resolved) and receiver, a notification row
(``records``: ``alert_notifications``, ``pending``). Nothing is sent from it directly. Each receiver's
queued rows are grouped by the values of the rule's ``group_by`` labels for that receiver
(``alert_rules.Grouping``); a group's notification lists its alerts that fired or resolved since its
last one, and is sent:

- first, ``group_wait`` after its first queued row (so a burst arrives as one notification);
- then no sooner than ``group_interval`` after the one before (a change waits for the next);
- and, while alerts of the group still fire and nothing changed, again every ``repeat_interval``.

Unlike Alertmanager, a group whose alerts all resolved keeps its last notification time, so a
group that empties and fills again still waits ``group_interval``: a flapping rule cannot send more.

An alert a silence matches (``silences``) when its row would be sent is not listed: its row becomes
``silenced`` (and so does its resolution, since nobody was told it fired). The rows told of become
``grouped``. A group's notifications are stored (``alert_group_notifications``) and delivered with
retries by ``delivery``; its state (last notification, the alerts firing then) in ``alert_groups``.
Writing order makes a crash safe: the notification first (its id derives from the rows it lists, so
writing it again changes nothing), then the group's state, then the rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from ..alert_rules import AlertRule, Grouping
from ..state.transactions import utc
from ..storage import Store
from . import payloads, records, silences
from .records import NotificationRecord, next_version

GROUP_COLUMNS = (
    "tenant",
    "receiver",
    "group_key",
    "labels",
    "grouping",
    "firing",
    "last_notified_at",
    "notifications",
    "version",
)
OUTBOX_COLUMNS = ("tenant", "notification_id", "group_key", "labels", "alerts", *records.OUTBOX_STATE)

GROUPS = "SELECT * FROM alert_groups FINAL"
TENANT_GROUPS = """
SELECT * FROM alert_groups FINAL
WHERE tenant = {tenant:String}
ORDER BY length(firing) DESC, last_notified_at DESC, receiver, group_key
"""
OUTBOX = """
SELECT * FROM alert_group_notifications FINAL
WHERE status = 'pending'
ORDER BY created_at, notification_id
"""
NOTIFICATIONS_LISTING = """
SELECT * FROM alert_group_notifications FINAL
WHERE tenant = {tenant:String} AND hasAny(alerts, {alert_ids:Array(String)})
ORDER BY created_at, receiver
"""
FIRING_ALERTS = """
SELECT * FROM alerts FINAL
WHERE tenant = {tenant:String} AND alert_id IN {alert_ids:Array(String)} AND status = 'firing'
ORDER BY fired_at, alert_id
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


@functools.cache  # a few per rule and receiver; asked for every notification queued, every delivery pass
def _grouping_text(grouping: Grouping) -> str:
    return orjson.dumps(asdict(grouping)).decode()


def group_key(receiver: str, grouping: Grouping, labels: Mapping[str, str]) -> str:
    """A group: the receiver, how it groups (the same labels under other timers are another group)
    and the values of its labels."""
    return _digest("group", receiver, _grouping_text(grouping), orjson.dumps(dict(labels)).decode())


@dataclass(frozen=True)
class Group:
    """A group's state as of its last notification."""

    tenant: str
    receiver: str
    group_key: str
    labels: Mapping[str, str]
    grouping: str  # JSON of its Grouping
    firing: tuple[str, ...]  # alert ids firing as of its last notification
    last_notified_at: dt.datetime | None
    notifications: int
    version: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Group:
        values = {name: row[name] for name in GROUP_COLUMNS}
        values["labels"] = dict(row["labels"])
        values["firing"] = tuple(row["firing"])
        values["last_notified_at"] = utc(row["last_notified_at"]) if row["last_notified_at"] else None
        return cls(**values)

    @property
    def settings(self) -> Grouping:
        stored = orjson.loads(self.grouping)
        return Grouping(**{**stored, "group_by": tuple(stored["group_by"])})


@dataclass(frozen=True)
class GroupNotification:
    """One notification of a group to its receiver: the outbox ``delivery`` sends from."""

    tenant: str
    notification_id: str
    group_key: str
    labels: Mapping[str, str]
    alerts: tuple[str, ...]  # the alert ids it lists
    receiver: str
    receiver_type: str
    event: str  # firing (some alert of the group fires) | resolved (none does any more)
    payload: str  # JSON, the generic webhook form; rendered per receiver type when sent
    status: str  # pending | delivered | failed | skipped
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    version: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> GroupNotification:
        values = {name: row[name] for name in OUTBOX_COLUMNS}
        values["labels"] = dict(row["labels"])
        values["alerts"] = tuple(row["alerts"])
        for name in ("next_attempt_at", "created_at"):
            values[name] = utc(row[name])
        values["delivered_at"] = utc(row["delivered_at"]) if row["delivered_at"] else None
        return cls(**values)

    def after_attempt(
        self, ok: bool, error: str, at: dt.datetime, retry_in_s: float | None
    ) -> GroupNotification:
        """This notification once one more attempt is done; ``retry_in_s`` None: no more attempts."""
        attempts = self.attempts + 1
        if ok:
            status, next_at, delivered = "delivered", at, at
        elif retry_in_s is None:
            status, next_at, delivered = "failed", at, None
        else:
            status, next_at, delivered = "pending", at + dt.timedelta(seconds=retry_in_s), None
        final = status != "pending"
        return replace(
            self,
            status=status,
            attempts=attempts,
            next_attempt_at=next_at,
            last_error="" if ok else error,
            delivered_at=delivered,
            version=2 * attempts + int(final),  # a notification written again at version 0 never undoes it
        )

    def given_up(self, reason: str, at: dt.datetime, status: str = "failed") -> GroupNotification:
        """Final without (another) attempt: the receiver is gone, or has no URL (``skipped``)."""
        return replace(
            self, status=status, last_error=reason, next_attempt_at=at, version=2 * self.attempts + 1
        )


def save_groups(store: Store, groups: Sequence[Group]) -> None:
    store.insert("alert_groups", records.table_rows(groups, GROUP_COLUMNS), GROUP_COLUMNS)


def save_outbox(store: Store, notifications: Sequence[GroupNotification]) -> None:
    store.insert(
        "alert_group_notifications", records.table_rows(notifications, OUTBOX_COLUMNS), OUTBOX_COLUMNS
    )


def outbox(store: Store) -> list[GroupNotification]:
    """Every group notification still to be sent, oldest first, of every tenant."""
    return [GroupNotification.of(row) for row in store.rows(OUTBOX)]


def groups_of(store: Store, tenant: str) -> list[Group]:
    return [Group.of(row) for row in store.rows(TENANT_GROUPS, {"tenant": tenant})]


def listing(store: Store, tenant: str, alerts: Sequence[str]) -> list[GroupNotification]:
    """The group notifications that listed any of these alerts."""
    if not alerts:
        return []
    rows = store.rows(NOTIFICATIONS_LISTING, {"tenant": tenant, "alert_ids": list(alerts)})
    return [GroupNotification.of(row) for row in rows]


@dataclass
class _Bucket:
    """The queued rows of one group."""

    tenant: str
    receiver: str
    receiver_type: str
    key: str
    labels: dict[str, str]
    grouping: Grouping
    rows: list[tuple[NotificationRecord, dict[str, Any]]] = field(default_factory=list)


class Grouper:
    """Turns queued alert notifications into group notifications when their group is due."""

    def __init__(
        self,
        store: Store,
        rules: Callable[[], Sequence[AlertRule]],
        dashboard_url: str,
    ) -> None:
        self.store = store
        self.rules = rules  # the alert rules in force (a reload may change them)
        self.dashboard_url = dashboard_url

    def _grouping(self, row: NotificationRecord, rules: Mapping[str, AlertRule]) -> Grouping:
        rule = rules.get(row.rule)
        receiver = next((r for r in rule.receivers if r.name == row.receiver), None) if rule else None
        return rule.grouping_for(receiver) if rule and receiver else Grouping()

    def flush_due(self, now: dt.datetime) -> float:
        """Write the notifications of every group due at ``now``; returns the seconds until the
        next group is due (at most a day)."""
        store = self.store
        rules = {rule.name: rule for rule in self.rules()}
        queued = records.pending(store)
        known = {(g.tenant, g.receiver, g.group_key): g for g in (Group.of(r) for r in store.rows(GROUPS))}
        silenced_now = silences.in_force(store, now)
        buckets: dict[tuple[str, str, str], _Bucket] = {}
        muted: list[NotificationRecord] = []
        for row in queued:
            payload = orjson.loads(row.payload)
            labels = payload["alert"].get("labels") or {
                "rule": row.rule,
                "subject": payload["alert"]["subject"],
            }
            if silences.matching(silenced_now.get(row.tenant, []), labels):
                muted.append(replace(row, status="silenced", version=1))
                continue
            grouping = self._grouping(row, rules)
            values = {name: labels.get(name, "") for name in grouping.labels}
            key = group_key(row.receiver, grouping, values)
            bucket = buckets.setdefault(
                (row.tenant, row.receiver, key),
                _Bucket(row.tenant, row.receiver, row.receiver_type, key, values, grouping),
            )
            bucket.rows.append((row, payload))
        records.save_notifications(store, muted)
        next_due = 86400.0
        for identity, bucket in buckets.items():
            group = known.get(identity)
            due = min(row.created_at for row, _ in bucket.rows) + dt.timedelta(
                seconds=bucket.grouping.group_wait_s
            )
            if group is not None and group.last_notified_at is not None:
                due = max(
                    due, group.last_notified_at + dt.timedelta(seconds=bucket.grouping.group_interval_s)
                )
            if due > now:
                next_due = min(next_due, (due - now).total_seconds())
                continue
            self._flush(bucket, group, now)
        for identity, group in known.items():
            if identity in buckets or not group.firing or group.last_notified_at is None:
                continue
            due = group.last_notified_at + dt.timedelta(seconds=group.settings.repeat_interval_s)
            if due > now:
                next_due = min(next_due, (due - now).total_seconds())
                continue
            self._repeat(group, now)
        return next_due

    def _flush(self, bucket: _Bucket, group: Group | None, now: dt.datetime) -> None:
        """One notification for the group's queued rows: its new alerts and its resolved ones."""
        told = set(group.firing) if group else set()
        by_alert: dict[str, dict[str, tuple[NotificationRecord, dict[str, Any]]]] = {}
        for row, payload in bucket.rows:
            by_alert.setdefault(row.alert_id, {})[row.event] = (row, payload)
        listed: list[dict[str, Any]] = []
        done: list[NotificationRecord] = []
        firing = set(told)
        for alert, events in by_alert.items():
            if "resolved" in events:
                firing.discard(alert)
                if alert in told or "firing" in events:
                    listed.append(events["resolved"][1])
                    done += [replace(row, status="grouped", version=1) for row, _ in events.values()]
                else:  # its firing was never told (silenced): nor is its resolution
                    done += [replace(row, status="silenced", version=1) for row, _ in events.values()]
                continue
            firing.add(alert)
            listed.append(events["firing"][1])
            done.append(replace(events["firing"][0], status="grouped", version=1))
        if listed:
            identity = _digest(
                "group-notification", bucket.key, *sorted(row.notification_id for row, _ in bucket.rows)
            )
            self._send(bucket, group, identity, listed, firing, False, now)
        records.save_notifications(self.store, done)

    def _repeat(self, group: Group, now: dt.datetime) -> None:
        """The group still fires and nothing changed for ``repeat_interval``: tell of it again."""
        rows = self.store.rows(FIRING_ALERTS, {"tenant": group.tenant, "alert_ids": list(group.firing)})
        alerts = [records.AlertRecord.of(row) for row in rows]
        listed = [orjson.loads(alert.context) for alert in alerts if alert.context]
        firing = {alert.alert_id for alert in alerts}
        bucket = _Bucket(
            group.tenant, group.receiver, "", group.group_key, dict(group.labels), group.settings
        )
        if listed:
            identity = _digest("group-repeat", group.group_key, str(group.last_notified_at))
            self._send(bucket, group, identity, listed, firing, True, now)
        else:  # what it told of resolved without a word (an alert from before labels): nothing to repeat
            save_groups(self.store, [self._state(bucket, group, firing, now)])

    def _send(
        self,
        bucket: _Bucket,
        group: Group | None,
        identity: str,
        listed: Sequence[Mapping[str, Any]],
        firing: set[str],
        repeat: bool,
        now: dt.datetime,
    ) -> None:
        """Write the group's notification listing ``listed`` (the notification first, see above),
        then the group's state as of it."""
        payload = payloads.group_payload(
            tenant=bucket.tenant,
            receiver=bucket.receiver,
            key=bucket.key,
            labels=bucket.labels,
            alerts=listed,
            firing=len(firing),
            repeat=repeat,
            dashboard_url=self.dashboard_url,
        )
        ids = tuple(dict.fromkeys(str(alert["alert"]["id"]) for alert in listed))
        save_outbox(self.store, [self._notification(bucket, identity, ids, payload, now)])
        save_groups(self.store, [self._state(bucket, group, firing, now)])

    @staticmethod
    def _state(bucket: _Bucket, group: Group | None, firing: set[str], now: dt.datetime) -> Group:
        return Group(
            tenant=bucket.tenant,
            receiver=bucket.receiver,
            group_key=bucket.key,
            labels=dict(bucket.labels),
            grouping=_grouping_text(bucket.grouping),
            firing=tuple(sorted(firing)),
            last_notified_at=now,
            notifications=(group.notifications if group else 0) + 1,
            version=next_version(),
        )

    def _notification(
        self,
        bucket: _Bucket,
        identity: str,
        alerts: tuple[str, ...],
        payload: Mapping[str, Any],
        now: dt.datetime,
    ) -> GroupNotification:
        receiver = next(
            (r for rule in self.rules() for r in rule.receivers if r.name == bucket.receiver), None
        )
        return GroupNotification(
            tenant=bucket.tenant,
            notification_id=identity,
            group_key=bucket.key,
            labels=bucket.labels,
            alerts=alerts,
            receiver=bucket.receiver,
            receiver_type=receiver.type if receiver else bucket.receiver_type,
            event=str(payload["status"]),
            payload=orjson.dumps(payload).decode(),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
            delivered_at=None,
            version=0,
        )
