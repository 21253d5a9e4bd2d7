"""API keys: who may send and read, for which tenant, how fast.

Keys come from a YAML file (``--api-keys FILE`` or ``THREADLINE_API_KEYS``)::

    keys:
      - name: acme-integrations       # shown in logs, never the key itself
        key: tl_live_8f3c...          # or `sha256: <hex digest of the key>` to keep it out of the file
        tenant: acme
        roles: [ingest]               # see ROLES
        events_per_second: 500        # optional limit; over it the collector answers 429

Every key belongs to one tenant, and every query is scoped to that tenant in SQL, so a key never
sees another tenant's transactions, aliases or traces. The one exception is the ``platform`` role,
held by whoever runs the collector: it sees every tenant's metrics and reloads the workflow
definitions every tenant shares, and a key holding only that role needs no tenant. With no keys
configured there is one anonymous tenant with every role, and the collector listens on the
loopback interface only.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from fastapi import Request

from .http_errors import ApiError

# ingest: send events. read: the query API and the audit trail. act: change what operators change
# (resolve, reopen, acknowledge), audited under the key's name. admin: all three within its tenant,
# and its tenant's series on /metrics. platform: collector-wide, every tenant's /metrics and
# reloading the shared workflow definitions; no tenant role implies it, nor does it imply one.
Role = Literal["ingest", "read", "act", "admin", "platform"]
ROLES: frozenset[str] = frozenset(get_args(Role))
IMPLIED: Mapping[str, frozenset[str]] = {"admin": frozenset({"ingest", "read", "act"})}
ANONYMOUS_TENANT = ""


class KeyFileError(ValueError):
    """The keys file cannot be used; the collector refuses to start rather than run unprotected."""


class RateLimiter:
    """A token bucket of events: ``events_per_second`` sustained, ten seconds' worth in a burst.

    A batch costs its size, whatever its size. One larger than the burst is admitted only from a
    full bucket and leaves it in debt, which the following requests wait out: refusing it would make
    a batch the sender may legitimately send (an SDK's 512 events to a 5 events/s key) unsendable
    forever, while the debt keeps the sustained rate at ``events_per_second`` all the same.
    """

    def __init__(self, events_per_second: float, burst_seconds: float = 10.0) -> None:
        self.rate = events_per_second
        self.capacity = max(events_per_second * burst_seconds, 1.0)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self, events: int) -> float:
        """Spend ``events`` tokens; 0.0 when allowed, else the seconds after which this same
        request would be allowed (if no other request spends tokens meanwhile)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            needed = min(events, self.capacity)  # more than the burst: a full bucket, then debt
            if self._tokens >= needed:
                self._tokens -= events
                return 0.0
            return (needed - self._tokens) / self.rate


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant they act for and what they may do."""

    name: str
    tenant: str
    roles: frozenset[str]
    limiter: RateLimiter | None = field(default=None, compare=False)

    @property
    def granted(self) -> frozenset[str]:
        """The roles it holds and the roles they imply."""
        return self.roles.union(*(IMPLIED.get(role, frozenset()) for role in self.roles))

    def may(self, role: str) -> bool:
        return role in self.granted


ANONYMOUS = Principal(name="anonymous", tenant=ANONYMOUS_TENANT, roles=ROLES)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, principals: Mapping[str, Principal] | None = None) -> None:
        self._by_digest = dict(principals or {})

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <key>`` header; 401 if absent or unknown."""
        if not self.enabled:
            return ANONYMOUS
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "unauthorized",
                "send an API key as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="threadline"'},
            )
        digest = _digest(key.strip())
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        raise ApiError(
            401,
            "unauthorized",
            "this API key is not known",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def _principal(entry: Any, index: int, source: str) -> tuple[str, Principal]:
    where = f"{source}: keys[{index}]"
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where} must be a mapping")
    unknown = set(entry) - {"name", "key", "sha256", "tenant", "roles", "events_per_second"}
    if unknown:
        raise KeyFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if bool(entry.get("key")) == bool(entry.get("sha256")):
        raise KeyFileError(f"{where} needs exactly one of `key` or `sha256`")
    digest = _digest(str(entry["key"])) if entry.get("key") else str(entry["sha256"]).lower()
    if len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
        raise KeyFileError(f"{where}: sha256 must be 64 hex digits")
    roles = entry.get("roles") or []
    if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
        raise KeyFileError(f"{where}: roles must be a list of {', '.join(sorted(ROLES))}")
    tenant = entry.get("tenant", ANONYMOUS_TENANT if set(roles) == {"platform"} else None)
    if not isinstance(tenant, str) or not (tenant.strip() or set(roles) == {"platform"}):
        raise KeyFileError(f"{where} needs a tenant (only a key whose one role is platform has none)")
    rate = entry.get("events_per_second")
    if rate is not None and (not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0):
        raise KeyFileError(f"{where}: events_per_second must be a positive number")
    return digest, Principal(
        name=str(entry.get("name") or f"key {index + 1} of {tenant or 'the platform'}"),
        tenant=tenant.strip(),
        roles=frozenset(roles),
        limiter=RateLimiter(float(rate)) if rate else None,
    )


def load_keys(path: str | os.PathLike[str] | None) -> ApiKeys:
    """The keys of a YAML keys file; no file, no keys (the collector then stays on loopback)."""
    if path is None or str(path) == "":
        return ApiKeys()
    source = str(path)
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise KeyFileError(f"{source}: {error}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"{source}: expected `keys:` with a list of keys")
    principals = dict(_principal(entry, index, source) for index, entry in enumerate(entries))
    if len(principals) != len(entries):
        raise KeyFileError(f"{source}: the same key is listed twice")
    return ApiKeys(principals)


def require(*roles: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's principal, if it holds one of ``roles`` (else 401/403)."""
    wanted = " or ".join(repr(role) for role in roles)

    def dependency(request: Request) -> Principal:
        principal = request.app.state.collector.keys.authenticate(request.headers.get("authorization"))
        if not any(principal.may(role) for role in roles):
            raise ApiError(403, "forbidden", f"this API key does not have the {wanted} role")
        request.state.principal = principal
        return principal

    return dependency


def enforce_rate(principal: Principal, events: int) -> None:
    """429 with Retry-After when the key is over its events-per-second limit."""
    if principal.limiter is None or events == 0:
        return
    wait = principal.limiter.take(events)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"over this key's limit of {principal.limiter.rate:g} events per second (bursts of "
            f"{principal.limiter.capacity:g}; a larger batch waits for a full bucket and its excess "
            "is paid back by the requests after it); retry after the Retry-After seconds",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
