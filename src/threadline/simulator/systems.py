"""The fake systems: each one is an integration that records its steps with the real Threadline SDK.

In production every integration is its own process with ``sdk.configure(system=...)``. The simulator
plays six of them in one process, so each fake system owns a private SDK ``Client`` built from its
own settings (``service`` and ``system``), all sending to the same collector. Events therefore go
through the SDK's real pipeline: argument checks, redaction, spans on a private tracer provider,
the background OTLP/HTTP delivery, backoff and the on-disk spool.

Each business event is recorded as a child of a technical span (the API call the integration made:
``POST /services/rest/record/v1/salesOrder``), so the collector also gets a technical trace to link
from the business event, as it would from an instrumented integration.
"""

from __future__ import annotations

import math
import os
import random
import threading
from collections.abc import Callable, Mapping
from functools import cache
from typing import ClassVar, Protocol, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from threadline.contract.attributes import DURATION_MS
from threadline.sdk._client import Client
from threadline.sdk._settings import resolve

T = TypeVar("T")


class PlannedEvent(Protocol):
    """What a system sends of an event the planner planned (``planner.PlannedEvent``)."""

    @property
    def workflow(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def system(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def aliases(self) -> Mapping[str, str]: ...
    @property
    def amount(self) -> float | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def error(self) -> Mapping[str, str] | None: ...
    @property
    def attempt(self) -> int | None: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...
    @property
    def duration_ms(self) -> float: ...


class FakeSystem:
    """One system's integration: what its API calls look like, how long they take, how they fail.

    The class attributes describe the system (used while planning, before anything is sent); an
    instance owns the SDK client that records the system's events.
    """

    name: ClassVar[str] = "generic"  # the ``system`` of its events, as in the workflow definitions
    service: ClassVar[str] = "generic-integration"  # the integration's ``service.name``
    host: ClassVar[str] = "api.example.com"
    api: ClassVar[str] = "/api/{object}"
    latency_ms: ClassVar[float] = 200.0  # median duration of one API call
    transient_errors: ClassVar[tuple[str, ...]] = ("503 Service Unavailable", "connection reset by peer")

    def __init__(self, client: Client) -> None:
        self.client = client

    # --- planning: what a call of this system looks like ------------------------------------

    @classmethod
    def call_ms(cls, rng: random.Random, factor: float = 1.0) -> float:
        """How long one API call takes: log-normal around the system's median, with a long tail."""
        return round(cls.latency_ms * factor * math.exp(rng.gauss(0, 0.45)), 1)

    @classmethod
    def transient_error(cls, rng: random.Random) -> str:
        return rng.choice(cls.transient_errors)

    @classmethod
    def operation(cls, step: str) -> tuple[str, str]:
        """HTTP method and route of the call that did ``step`` (``erp.order.created`` → POST .../order)."""
        parts = step.split(".")
        record = parts[1] if len(parts) > 2 else parts[0]
        words = record.split("_")
        camel = words[0] + "".join(word.title() for word in words[1:])
        method = "POST" if parts[-1] in ("created", "requested", "opened", "posted") else "PATCH"
        return method, cls.api.format(object=camel, Object=camel[:1].upper() + camel[1:])

    # --- sending -------------------------------------------------------------------------------

    def emit(self, event: PlannedEvent, timestamp: float) -> bool:
        """Record ``event`` as happening at ``timestamp`` (Unix seconds); False if the SDK refused it.

        The same path as ``sdk.event``: ``Client.attributes`` checks and redacts, ``Client.emit``
        starts and ends the span that the background thread delivers.
        """
        client = self.client
        attributes = client.attributes(
            "event",
            event.workflow,
            event.step,
            event.correlation_id,
            event.status,
            event.event_id,
            dict(event.aliases),
            event.amount,
            event.currency,
            dict(event.error) if event.error else None,
            event.attempt,
            dict(event.attributes),
        )
        if attributes is None:
            return False
        attributes[DURATION_MS] = event.duration_ms
        start_ns = round(timestamp * 1_000_000) * 1000
        end_ns = start_ns + round(event.duration_ms * 1_000_000)
        method, route = self.operation(event.step)
        code = 200 if event.error is None else (503 if event.error.get("kind") == "transient" else 422)
        call = client.tracer.start_span(
            f"{method} {route}",
            start_time=start_ns - 1_500_000,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.path": route,
                "server.address": self.host,
                "http.response.status_code": code,
            },
        )
        token = context.attach(trace.set_span_in_context(call))
        try:
            client.emit(event.step, attributes, start_ns, end_ns)
        finally:
            context.detach(token)
        if event.error is not None:
            call.set_status(Status(StatusCode.ERROR, event.error.get("message", "")))
        call.end(end_time=end_ns + 800_000)
        return True


class Crm(FakeSystem):
    """Salesforce-like CRM: opportunities, accounts, renewals."""

    name = "salesforce"
    service = "salesforce-sync"
    host = "acme.my.salesforce.com"
    api = "/services/data/v60.0/sobjects/{Object}"
    latency_ms = 180.0
    transient_errors = (
        "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record",
        "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded",
        "503 Service Unavailable: instance is in maintenance",
    )


class Cpq(FakeSystem):
    """The CPQ tool: quotes and their approval."""

    name = "cpq"
    service = "cpq-connector"
    host = "cpq.acme.internal"
    api = "/api/v1/{object}s"
    latency_ms = 260.0
    transient_errors = ("502 Bad Gateway from pricing engine", "504 Gateway Timeout: approval service")


class Billing(FakeSystem):
    """Stripe- or Zuora-like billing: customers, subscriptions, invoices, payments, credit notes."""

    name = "stripe"
    service = "stripe-webhooks"
    host = "api.stripe.com"
    api = "/v1/{object}s"
    latency_ms = 130.0
    transient_errors = (
        "rate_limit: Too many requests hit the API too quickly",
        "api_connection_error: could not connect to Stripe",
        "lock_timeout: this object is being updated by another request",
    )


class Support(FakeSystem):
    """Zendesk- or ServiceNow-like support desk: organisations, entitlements, cases."""

    name = "zendesk"
    service = "zendesk-app"
    host = "acme.zendesk.com"
    api = "/api/v2/{object}s"
    latency_ms = 210.0
    transient_errors = ("429 Too Many Requests (Retry-After: 30)", "503 Service Unavailable")


class Erp(FakeSystem):
    """NetSuite- or SAP-like ERP: customers, sales orders, credit memos, revenue schedules."""

    name = "netsuite"
    service = "netsuite-restlet"
    host = "1234567.suitetalk.api.netsuite.com"
    api = "/services/rest/record/v1/{object}"
    latency_ms = 650.0
    transient_errors = (
        "SSS_REQUEST_LIMIT_EXCEEDED: concurrent request limit exceeded",
        "UNEXPECTED_ERROR: An unexpected error occurred",
        "RCRD_LOCKED_BY_WF: record is locked by a workflow",
    )


class Middleware(FakeSystem):
    """MuleSoft-like middleware: moves records between the others."""

    name = "mulesoft"
    service = "mulesoft-runtime"
    host = "mule-prod.acme.cloudhub.io"
    api = "/api/{object}/sync"
    latency_ms = 90.0
    transient_errors = ("HTTP:SERVICE_UNAVAILABLE from target system", "MULE:RETRY_EXHAUSTED on first try")


KNOWN: dict[str, type[FakeSystem]] = {cls.name: cls for cls in (Crm, Cpq, Billing, Support, Erp, Middleware)}


@cache
def system_class(name: str) -> type[FakeSystem]:
    """The fake system called ``name``; a system without a class of its own gets a generic one."""
    if name in KNOWN:
        return KNOWN[name]
    title = "".join(part.title() for part in name.replace("-", "_").split("_")) or "Generic"
    return type(title, (FakeSystem,), {"name": name, "service": f"{name}-integration"})


class Fleet:
    """Every fake system of one run, each with its own SDK client, all sending to one collector."""

    def __init__(self, endpoint: str, spool_dir: str | os.PathLike[str] | None = None) -> None:
        self.endpoint = endpoint
        self.spool_dir = spool_dir
        self._systems: dict[str, FakeSystem] = {}
        self._lock = threading.Lock()
        self.sent = 0

    def system(self, name: str) -> FakeSystem:
        found = self._systems.get(name)
        if found is None:
            with self._lock:
                found = self._systems.get(name)
                if found is None:
                    cls = system_class(name)
                    settings = resolve(
                        service=cls.service, system=name, endpoint=self.endpoint, spool_dir=self.spool_dir
                    )
                    found = self._systems[name] = cls(Client(settings))
        return found

    def emit(self, event: PlannedEvent, timestamp: float) -> None:
        if self.system(event.system).emit(event, timestamp):
            self.sent += 1

    def clients(self) -> list[Client]:
        return [system.client for system in list(self._systems.values())]

    def flush(self, timeout_s: float) -> bool:
        """Deliver what every system queued, all at once; True when all of it reached the collector."""
        return all(_each(self.clients(), lambda client: client.processor.flush(timeout_s)))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop every system's delivery thread; what could not be delivered stays in the spool."""
        _each(self.clients(), lambda client: client.shutdown(timeout_s))
        self._systems.clear()


def _each(clients: list[Client], action: Callable[[Client], T]) -> list[T]:
    """``action`` on every client at once: each waits on its own delivery thread, so waits overlap."""
    results: list[T] = []
    threads = [threading.Thread(target=lambda c=client: results.append(action(c))) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
