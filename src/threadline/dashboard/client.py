"""A typed HTTP client for the collector's query API: the dashboard's only source of data.

Every failure becomes one of three exceptions the pages know how to show: ``ApiUnavailable`` (the
collector cannot be reached or is failing: a banner, retried on the next refresh), ``NotFound`` (an
unknown key, workflow or trace: an empty state) and ``ApiRejected`` (the API refused the request).

The operators' actions (acknowledge, resolve, reopen) are the only writes; they go out with the same
bearer key as the reads, so the audit trail names the dashboard's key as the actor. The collector
takes them only from a key with the ``act`` role (``whoami`` tells the dashboard whether it has it).
With sign-in, ``key_for_request`` picks the key of the signed-in person's role for each request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.metadata import version
from typing import Any, cast
from urllib.parse import quote

import httpx

from .schema import (
    AcknowledgeResult,
    AlertDetail,
    AlertGroups,
    AlertPage,
    AlertRules,
    AuditEntry,
    AuditPage,
    BulkActionResult,
    DimensionValues,
    ExceptionsReport,
    KeyView,
    Overview,
    ProcessMap,
    Retention,
    SchemaDriftReport,
    Silence,
    Silences,
    SystemsReport,
    Trace,
    TransactionDetail,
    TransactionPage,
    Workflow,
)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=3.0)
# The ages of the shared answers (the collector's X-Threadline-Shared, with Age) this thread got
# inside ``shared_ages()``: the page says how old its figures may be.
_SHARED_AGES: ContextVar[list[int] | None] = ContextVar("shared_ages", default=None)


@contextmanager
def shared_ages() -> Iterator[list[int]]:
    """Collects, in seconds, the age of every shared answer the calls made inside the block got."""
    ages: list[int] = []
    token = _SHARED_AGES.set(ages)
    try:
        yield ages
    finally:
        _SHARED_AGES.reset(token)


Params = Mapping[str, str | int | bool | dt.datetime | Iterable[str] | None]


class ApiError(Exception):
    """Any failure of a query-API call."""


class ApiUnavailable(ApiError):
    """The collector did not answer, or answered with a server error; worth retrying later."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"the Threadline collector at {base_url} is unavailable: {reason}")
        self.base_url = base_url
        self.reason = reason


class NotFound(ApiError):
    """The API has nothing under that key, workflow or trace id (HTTP 404)."""


class ApiRejected(ApiError):
    """The API refused the request (a 4xx other than 404), with its own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _value(value: str | int | bool | dt.datetime) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _params(params: Params) -> dict[str, str | list[str]]:
    """Drop unset filters (None, empty strings and lists): the API reads a missing one as "any".

    A list is sent as a repeated parameter (``state=stuck&state=failed``), which every version of
    the API reads.
    """
    cleaned: dict[str, str | list[str]] = {}
    for name, value in params.items():
        if value is None or value == "" or value is False:
            continue
        if isinstance(value, str | int | bool | dt.datetime):
            cleaned[name] = _value(value)
        elif values := [str(item) for item in value]:
            cleaned[name] = values
    return cleaned


class QueryClient:
    """The query API of one collector; thread-safe, one connection pool shared by every callback."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        key_for_request: Callable[[], str | None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key_for_request = key_for_request
        agent = f"threadline-dashboard/{version('threadline')}"
        headers = {"Accept": "application/json", "User-Agent": agent}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def _get(self, path: str, params: Params | None = None) -> Any:
        return self._send("GET", path, params=_params(params or {}))

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        """A write; never retried here, so an action is never recorded twice by the dashboard."""
        return self._send("POST", path, json=dict(body))

    def _send(self, method: str, path: str, **request: Any) -> Any:
        if self._key_for_request is not None and (key := self._key_for_request()):
            request["headers"] = {"Authorization": f"Bearer {key}"}
        try:
            response = self._http.request(method, path, **request)
        except httpx.TimeoutException:
            raise ApiUnavailable(self.base_url, "it did not answer in time") from None
        except httpx.TransportError as error:
            raise ApiUnavailable(self.base_url, f"cannot connect ({type(error).__name__})") from None
        if response.status_code >= 500:
            raise ApiUnavailable(self.base_url, f"HTTP {response.status_code}: {_message(response)}")
        if response.status_code == 404:
            raise NotFound(_message(response))
        if response.status_code >= 400:
            raise ApiRejected(response.status_code, _message(response))
        ages = _SHARED_AGES.get()
        if ages is not None and "x-threadline-shared" in response.headers:
            ages.append(int(response.headers.get("age", "0") or 0))
        try:
            return response.json()
        except ValueError:
            raise ApiUnavailable(self.base_url, "it answered something that is not JSON") from None

    def whoami(self) -> KeyView:
        """``/api/whoami``: this client's key, its tenant and what it may do."""
        return cast(KeyView, self._get("/api/whoami"))

    def overview(
        self,
        workflow: str = "",
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        as_of: dt.datetime | None = None,
        group_by: str | None = None,
    ) -> Overview:
        """``/api/overview``: figures over transactions started in the range (per value of the
        dimension ``group_by`` too)."""
        params = {"workflow": workflow, "since": since, "until": until, "as_of": as_of, "group_by": group_by}
        return cast(Overview, self._get("/api/overview", params))

    def transactions(
        self,
        *,
        workflow: str = "",
        states: Iterable[str] = (),
        system: str = "",
        breached: bool | None = None,
        violations: bool = False,
        attention: bool = False,
        issues: Iterable[str] = (),
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        as_of: dt.datetime | None = None,
        limit: int = 500,
        cursor: str | None = None,
        predicted_breach: bool = False,
        sort: str | None = None,
        dimensions: Iterable[str] = (),
    ) -> TransactionPage:
        """``/api/transactions``: the operations queue, newest activity first, or soonest predicted
        breach first (``sort="predicted_breach"``) (filters AND together)."""
        params: dict[str, Any] = {
            "workflow": workflow,
            "state": list(states),
            "system": system,
            "breached": breached,
            "violations": violations,
            "attention": attention,
            "issue": list(issues),
            "dimension": list(dimensions),  # each `<dimension>:<value>`
            "since": since,
            "until": until,
            "as_of": as_of,
            "limit": limit,
            "cursor": cursor,
            "predicted_breach": predicted_breach,
            "sort": sort,
        }
        if breached is False:
            params["breached"] = "false"  # "within SLA" is a filter, unlike the other False flags
        return cast(TransactionPage, self._get("/api/transactions", params))

    def transaction(self, key: str, as_of: dt.datetime | None = None) -> TransactionDetail:
        """One transaction by its correlation id or any alias; ``NotFound`` for an unknown key."""
        return cast(
            TransactionDetail, self._get(f"/api/transactions/{quote(key, safe='')}", {"as_of": as_of})
        )

    def retention(self) -> Retention:
        """``/api/retention``: how far back the tenant's data goes."""
        return cast(Retention, self._get("/api/retention"))

    def dimensions(self) -> list[DimensionValues]:
        """``/api/dimensions``: the declared dimensions, each with its commonest values."""
        return cast(list[DimensionValues], self._get("/api/dimensions"))

    def workflows(self) -> list[Workflow]:
        """``/api/workflows``: the definitions in force."""
        return cast(list[Workflow], self._get("/api/workflows"))

    def process_map(
        self, workflow: str, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> ProcessMap:
        """``/api/workflows/{name}/map``: nodes, directly-follows edges and variants."""
        path = f"/api/workflows/{quote(workflow, safe='')}/map"
        return cast(ProcessMap, self._get(path, {"since": since, "until": until}))

    def systems(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> SystemsReport:
        """``/api/systems``: per system health, overall and over time (event-time range)."""
        return cast(SystemsReport, self._get("/api/systems", {"since": since, "until": until}))

    def schema_drift(self, as_of: dt.datetime | None = None) -> SchemaDriftReport:
        """``/api/systems/drift``: the attributes a system's step stopped sending, or began to."""
        return cast(SchemaDriftReport, self._get("/api/systems/drift", {"as_of": as_of}))

    def trace(self, trace_id: str) -> Trace:
        """``/api/traces/{trace_id}``: the technical spans and the business events linked to them."""
        return cast(Trace, self._get(f"/api/traces/{quote(trace_id, safe='')}"))

    def alerts(
        self,
        *,
        status: str = "",
        rule: str = "",
        severity: str = "",
        workflow: str = "",
        transaction: str = "",
        limit: int = 50,
        cursor: str | None = None,
    ) -> AlertPage:
        """``/api/alerts``: alerts newest first (no status: the whole history), and the firing count."""
        params: Params = {
            "status": status,
            "rule": rule,
            "severity": severity,
            "workflow": workflow,
            "transaction": transaction,
            "limit": limit,
            "cursor": cursor,
        }
        return cast(AlertPage, self._get("/api/alerts", params))

    def alert(self, alert_id: str) -> AlertDetail:
        """One alert with the payload it fired with and every delivery attempt; ``NotFound`` if unknown."""
        return cast(AlertDetail, self._get(f"/api/alerts/{quote(alert_id, safe='')}"))

    def alert_rules(self) -> AlertRules:
        """``/api/alerts/rules``: the rules and receivers in force, and the last evaluation."""
        return cast(AlertRules, self._get("/api/alerts/rules"))

    def alert_groups(self) -> AlertGroups:
        """``/api/alerts/groups``: the notification groups, firing first."""
        return cast(AlertGroups, self._get("/api/alerts/groups"))

    def silences(self) -> Silences:
        """``/api/alerts/silences``: those in force or to come first, then the ended ones."""
        return cast(Silences, self._get("/api/alerts/silences"))

    def create_silence(
        self, matchers: dict[str, str], ends_at: str, comment: str, starts_at: str = "", operator: str = ""
    ) -> Silence:
        """Silence the alerts matching every matcher until ``ends_at`` (from ``starts_at``, else now)."""
        body: dict[str, Any] = {
            "matchers": matchers,
            "ends_at": ends_at,
            "comment": comment,
            "operator": operator,
        }
        if starts_at:
            body["starts_at"] = starts_at
        return cast(Silence, self._post("/api/alerts/silences", body))

    def expire_silence(self, silence_id: str, comment: str, operator: str = "") -> Silence:
        """End a silence now; ``ApiRejected`` (409) when it already ended."""
        path = f"/api/alerts/silences/{quote(silence_id, safe='')}/expire"
        return cast(Silence, self._post(path, {"comment": comment, "operator": operator}))

    def exceptions(
        self,
        *,
        kind: str = "",
        system: str = "",
        workflow: str = "",
        as_of: dt.datetime | None = None,
        limit: int = 100,
    ) -> ExceptionsReport:
        """``/api/exceptions``: open exceptions grouped by error kind and system (``limit`` items each)."""
        params = {"kind": kind, "system": system, "workflow": workflow, "as_of": as_of, "limit": limit}
        return cast(ExceptionsReport, self._get("/api/exceptions", params))

    def acknowledge(
        self, *, kind: str, system: str, comment: str, workflow: str = "", operator: str = ""
    ) -> AcknowledgeResult:
        """Acknowledge a group of exceptions (every workflow unless ``workflow``), with a comment."""
        body = {
            "kind": kind,
            "system": system,
            "workflow": workflow,
            "comment": comment,
            "operator": operator,
        }
        return cast(AcknowledgeResult, self._post("/api/exceptions/ack", body))

    def resolve(self, key: str, comment: str, operator: str = "") -> AuditEntry:
        """Mark a transaction resolved; ``ApiRejected`` (409) when it already is."""
        path = f"/api/transactions/{quote(key, safe='')}/resolve"
        return cast(AuditEntry, self._post(path, {"comment": comment, "operator": operator}))

    def reopen(self, key: str, comment: str, operator: str = "") -> AuditEntry:
        """Undo a resolution; ``ApiRejected`` (409) when the transaction is not resolved."""
        path = f"/api/transactions/{quote(key, safe='')}/reopen"
        return cast(AuditEntry, self._post(path, {"comment": comment, "operator": operator}))

    def act_in_bulk(
        self,
        action: str,
        comment: str,
        operator: str = "",
        *,
        correlation_ids: list[str] | None = None,
        exception_group: dict[str, str] | None = None,
    ) -> BulkActionResult:
        """Resolve or acknowledge many transactions (or an exception group's), one audit entry each."""
        body: dict[str, Any] = {"action": action, "comment": comment, "operator": operator}
        if exception_group is not None:
            body["exception_group"] = exception_group
        else:
            body["correlation_ids"] = correlation_ids or []
        return cast(BulkActionResult, self._post("/api/transactions/actions", body))

    def request_action(self, key: str, name: str, comment: str, operator: str = "") -> AuditEntry:
        """Ask the owning integration for a declared action (request retry); the audit entry holds its
        answer. ``ApiRejected`` (409) while the action is not configured."""
        path = f"/api/transactions/{quote(key, safe='')}/actions/{quote(name, safe='')}"
        return cast(AuditEntry, self._post(path, {"comment": comment, "operator": operator}))

    def audit(
        self,
        *,
        action: str = "",
        transaction: str = "",
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> AuditPage:
        """``/api/audit``: the operators' actions, newest first (``transaction``: any key of one)."""
        params = {
            "action": action,
            "transaction": transaction,
            "since": since,
            "until": until,
            "limit": limit,
            "cursor": cursor,
        }
        return cast(AuditPage, self._get("/api/audit", params))


def _message(response: httpx.Response) -> str:
    """The API's own error message ({"error", "message"}), or the status line when there is none."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return response.reason_phrase or f"HTTP {response.status_code}"
