"""Silences: operators hold back the notifications of the alerts they match, for a while.

A silence matches an alert when every one of its matchers (label: value) equals the alert's label
(``alert_rules.LABELS``). From ``starts_at`` until ``ends_at`` the alerts it matches send nothing
(``groups`` marks their notifications ``silenced``); they still fire, resolve and show on the Alerts
page, marked silenced. A maintenance window for a system is a silence on ``system`` starting later.
Expiring one ends it now. Every silence is stored (``alert_silences``), and setting or expiring one
is an operator's action in the audit trail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from ..models import AuditEntry, CommentRequest, SilenceRequest, SilenceState, SilenceView
from ..state.exception_groups import record_action
from ..state.transactions import utc
from ..storage import Store
from .records import next_version

SILENCE_COLUMNS = (
    "tenant",
    "silence_id",
    "matchers",
    "starts_at",
    "ends_at",
    "comment",
    "created_by",
    "operator",
    "created_at",
    "expired_by",
    "version",
)

SILENCES = """
SELECT * FROM alert_silences FINAL
WHERE tenant = {tenant:String}
ORDER BY ends_at < {now:DateTime64(6, 'UTC')}, starts_at DESC, silence_id
LIMIT {limit:UInt32}
"""

IN_FORCE = """
SELECT * FROM alert_silences FINAL
WHERE starts_at <= {now:DateTime64(6, 'UTC')} AND ends_at > {now:DateTime64(6, 'UTC')}
"""

ONE_SILENCE = """
SELECT * FROM alert_silences FINAL WHERE tenant = {tenant:String} AND silence_id = {silence_id:String}
"""


class SilenceRefused(ValueError):
    """The request cannot be carried out as asked: ``field`` is wrong for ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SilenceEnded(ValueError):
    """Expiring a silence that already ended."""


@dataclass(frozen=True)
class Silence:
    tenant: str
    silence_id: str
    matchers: Mapping[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime
    comment: str
    created_by: str
    operator: str
    created_at: dt.datetime
    expired_by: str
    version: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Silence:
        values = {name: row[name] for name in SILENCE_COLUMNS}
        for name in ("starts_at", "ends_at", "created_at"):
            values[name] = utc(row[name])
        values["matchers"] = dict(row["matchers"])
        return cls(**values)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(label) == value for label, value in self.matchers.items())

    def state(self, now: dt.datetime) -> SilenceState:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def view(self, now: dt.datetime) -> SilenceView:
        return SilenceView(
            id=self.silence_id,
            matchers=dict(self.matchers),
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            state=self.state(now),
            comment=self.comment,
            created_by=self.created_by,
            operator=self.operator or None,
            created_at=self.created_at,
            expired_by=self.expired_by or None,
        )

    def described(self) -> str:
        """For the audit trail: what it matches and when."""
        matchers = ", ".join(f"{label}={value}" for label, value in sorted(self.matchers.items()))
        window = f"from {self.starts_at.isoformat()} to {self.ends_at.isoformat()}"
        return f"silence {self.silence_id} ({matchers}) {window}"


def _save(store: Store, silence: Silence) -> None:
    row = [
        dict(silence.matchers) if name == "matchers" else getattr(silence, name) for name in SILENCE_COLUMNS
    ]
    store.insert("alert_silences", [row], SILENCE_COLUMNS)


def _audit(store: Store, silence: Silence, actor: str, action: str, request: CommentRequest) -> AuditEntry:
    return record_action(
        store,
        silence.tenant,
        actor,
        cast(Any, action),
        system=silence.matchers.get("system", ""),
        workflow=silence.matchers.get("workflow", ""),
        comment=f"{request.comment} [{silence.described()}]",
        operator=request.operator,
    )


def create(store: Store, tenant: str, actor: str, request: SilenceRequest, now: dt.datetime) -> Silence:
    """Store a silence set by ``actor`` (the API key's name) and audit it; SilenceRefused when its
    times make no sense."""
    starts = utc(request.starts_at) if request.starts_at else now
    ends = utc(request.ends_at)
    if ends <= starts:
        raise SilenceRefused("ends_at", "must be after starts_at")
    if ends <= now:
        raise SilenceRefused("ends_at", "must be in the future")
    silence = Silence(
        tenant=tenant,
        silence_id=str(uuid.uuid4()),
        matchers=dict(sorted(request.matchers.items())),
        starts_at=starts,
        ends_at=ends,
        comment=request.comment,
        created_by=actor,
        operator=request.operator,
        created_at=now,
        expired_by="",
        version=next_version(),
    )
    _save(store, silence)
    _audit(
        store, silence, actor, "silence", CommentRequest(comment=request.comment, operator=request.operator)
    )
    return silence


def expire(
    store: Store, tenant: str, actor: str, silence_id: str, request: CommentRequest, now: dt.datetime
) -> Silence | None:
    """End a silence now (a pending one never starts); None when there is no such silence,
    SilenceEnded when it already ended."""
    rows = store.rows(ONE_SILENCE, {"tenant": tenant, "silence_id": silence_id})
    if not rows:
        return None
    silence = Silence.of(rows[0])
    if silence.state(now) == "expired":
        raise SilenceEnded(f"silence {silence_id} already ended at {silence.ends_at.isoformat()}")
    expired = replace(
        silence, ends_at=now, starts_at=min(silence.starts_at, now), expired_by=actor, version=next_version()
    )
    _save(store, expired)
    _audit(store, expired, actor, "expire", request)
    return expired


def listed(store: Store, tenant: str, now: dt.datetime, limit: int = 500) -> list[Silence]:
    """A tenant's silences: those in force or to come first, then the ended ones, latest first."""
    rows = store.rows(SILENCES, {"tenant": tenant, "now": now, "limit": limit})
    return [Silence.of(row) for row in rows]


def in_force(store: Store, now: dt.datetime) -> dict[str, list[Silence]]:
    """The silences active at ``now``, by tenant."""
    found: dict[str, list[Silence]] = {}
    for row in store.rows(IN_FORCE, {"now": now}):
        silence = Silence.of(row)
        found.setdefault(silence.tenant, []).append(silence)
    return found


def matching(silences: list[Silence], labels: Mapping[str, str]) -> list[str]:
    """The ids of the silences that match these labels."""
    return [silence.silence_id for silence in silences if silence.matches(labels)]
