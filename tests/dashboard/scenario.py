"""Business events for the dashboard tests: named transactions the tests look for, plus background volume.

Every timestamp is relative to ``now``, with margins of at least ten minutes around every stuck and
SLA threshold of workflows.example.yaml, so each transaction keeps its state for the whole test run.
The background is drawn from a seeded generator: the same seed gives the same events.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

# The happy path of each example workflow: (step, system).
PATHS: dict[str, list[tuple[str, str]]] = {
    "quote-to-cash": [
        ("crm.opportunity.won", "salesforce"),
        ("erp.customer.validated", "netsuite"),
        ("cpq.quote.approved", "cpq"),
        ("erp.order.created", "netsuite"),
        ("billing.subscription.activated", "stripe"),
        ("support.entitlement.created", "zendesk"),
    ],
    "customer-onboarding": [
        ("crm.account.created", "salesforce"),
        ("middleware.account.synced", "mulesoft"),
        ("erp.customer.created", "netsuite"),
        ("billing.customer.created", "stripe"),
        ("support.organization.created", "zendesk"),
        ("crm.kickoff.scheduled", "salesforce"),
    ],
    "subscription-renewal": [
        ("crm.renewal.opened", "salesforce"),
        ("cpq.quote.created", "cpq"),
        ("cpq.quote.approved", "cpq"),
        ("billing.invoice.created", "stripe"),
        ("billing.payment.captured", "stripe"),
        ("middleware.payment.synced", "mulesoft"),
        ("erp.revenue_schedule.updated", "netsuite"),
    ],
    "support-credit": [
        ("support.credit.requested", "zendesk"),
        ("middleware.credit_request.validated", "mulesoft"),
        ("erp.credit.approved", "netsuite"),
        ("billing.credit.posted", "stripe"),
        ("support.customer.notified", "zendesk"),
    ],
}
# workflow: (SLA, stuck_after), as in workflows.example.yaml.
LIMITS = {
    "quote-to-cash": (dt.timedelta(hours=4), dt.timedelta(hours=1)),
    "customer-onboarding": (dt.timedelta(days=1), dt.timedelta(hours=2)),
    "subscription-renewal": (dt.timedelta(days=3), dt.timedelta(hours=8)),
    "support-credit": (dt.timedelta(days=2), dt.timedelta(hours=4)),
}
PREFIX = {
    "quote-to-cash": "OPP",
    "customer-onboarding": "ACC",
    "subscription-renewal": "REN",
    "support-credit": "CASE",
}
LATENCY_MS = {"salesforce": 180, "netsuite": 900, "cpq": 260, "stripe": 320, "zendesk": 150, "mulesoft": 90}

STUCK_KEY = "OPP-1042"
STUCK_ALIAS = "SO-88812"
BREACHED_KEY = "OPP-1045"
VIOLATION_KEY = "CASE-7781"
# Two completed orders; the second's ERP step announced the first's own key as its sales order.
CONFLICT_KEY, CONFLICT_OTHER = "OPP-1047", "OPP-1046"
# A completed order with a step quote-to-cash does not define, and a transaction of a workflow
# that is not defined at all (as a replayed log's), both stored as sent.
UNDEFINED_STEP_KEY, UNDEFINED_STEP = "OPP-1048", "support.survey.sent"
IMPORTED_KEY, IMPORTED_WORKFLOW = "IMP-3001", "legacy-order-import"
# Names a sender chose to be read as HTML (Plotly draws a subset of it): they must show as typed.
HTML_KEY = "OPP-1049"
LINK_TARGET = "https://evil.example"
LINK, BOLD = f'<a href="{LINK_TARGET}">x</a>', "<b>bold</b>"


@dataclass
class Scenario:
    """The events to send, and the keys of the transactions the tests look for."""

    now: dt.datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    stuck_trace_id: str = ""

    def event(
        self, key: str, workflow: str, step: str, system: str, at: dt.datetime, **fields: Any
    ) -> dict[str, Any]:
        event = {
            "correlation_id": key,
            "workflow": workflow,
            "step": step,
            "system": system,
            "timestamp": at.isoformat(),
            "event_id": f"{key}:{step}:{fields.get('attempt', 1)}:{fields.get('status', 'ok')}",
            **fields,
        }
        self.events.append(event)
        return event

    def send(self, collector_url: str, api_key: str | None = None) -> None:
        """POST the events (in batches) and the technical spans to a running collector."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        with httpx.Client(base_url=collector_url, timeout=30, headers=headers) as client:
            for start in range(0, len(self.events), 500):
                response = client.post("/v1/events", json={"events": self.events[start : start + 500]})
                response.raise_for_status()
            if self.spans:
                response = client.post("/v1/traces", json={"resourceSpans": self.spans})
                response.raise_for_status()


def _nanos(moment: dt.datetime) -> str:
    return str(int(moment.timestamp() * 1_000_000) * 1000)


def _span(
    trace_id: str,
    span_id: str,
    parent: str,
    name: str,
    start: dt.datetime,
    millis: float,
    kind: int = 3,
    error: str = "",
) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": _nanos(start),
        "endTimeUnixNano": _nanos(start + dt.timedelta(milliseconds=millis)),
        "status": {"code": 2, "message": error} if error else {"code": 1},
        "attributes": [],
    }


def _resource(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "threadline-tests"}, "spans": spans}],
    }


def _named(scenario: Scenario) -> None:
    """The transactions the tests name: stuck (found by its alias), breached, violating, failed."""
    now = scenario.now
    h = dt.timedelta(hours=1)
    m = dt.timedelta(minutes=1)
    q2c = "quote-to-cash"

    # Stuck: the order went to billing 2h30m ago and Stripe keeps failing (stuck after 1h, SLA 4h).
    key, start = STUCK_KEY, now - 3 * h
    amount = {"amount": 48_000.0, "currency": "USD"}
    scenario.event(key, q2c, "crm.opportunity.won", "salesforce", start, duration_ms=140, **amount)
    scenario.event(key, q2c, "erp.customer.validated", "netsuite", start + 6 * m, duration_ms=820)
    scenario.event(key, q2c, "cpq.quote.approved", "cpq", start + 11 * m, duration_ms=240)
    trace_id = secrets.token_hex(16)
    root, order, sql = secrets.token_hex(8), secrets.token_hex(8), secrets.token_hex(8)
    order_at = start + 30 * m
    scenario.event(
        key,
        q2c,
        "erp.order.created",
        "netsuite",
        order_at,
        duration_ms=1250,
        aliases={"erp.sales_order": STUCK_ALIAS},
        trace_id=trace_id,
        span_id=order,
    )
    scenario.stuck_trace_id = trace_id
    scenario.spans += [
        _resource(
            "mulesoft",
            [_span(trace_id, root, "", "POST /orders", order_at - dt.timedelta(milliseconds=80), 1450, 2)],
        ),
        _resource(
            "netsuite",
            [
                _span(trace_id, order, root, "salesOrder.create", order_at, 1250),
                _span(
                    trace_id, sql, order, "INSERT sales_order", order_at + dt.timedelta(milliseconds=300), 420
                ),
            ],
        ),
    ]
    for attempt, minutes in ((1, 32), (2, 40), (3, 55)):
        billing_trace, billing_span = secrets.token_hex(16), secrets.token_hex(8)
        at = start + minutes * m
        scenario.event(
            key,
            q2c,
            "billing.subscription.activated",
            "stripe",
            at,
            status="error",
            attempt=attempt,
            duration_ms=30_000,
            error={"kind": "timeout", "message": "Stripe API did not answer within 30s"},
            trace_id=billing_trace,
            span_id=billing_span,
        )
        scenario.spans.append(
            _resource(
                "stripe-connector",
                [_span(billing_trace, billing_span, "", "subscriptions.create", at, 30_000, error="timeout")],
            )
        )

    # In progress but past its 4h SLA: started 5h ago, last progress 20 minutes ago.
    key, start = BREACHED_KEY, now - 5 * h
    scenario.event(key, q2c, "crm.opportunity.won", "salesforce", start, amount=12_500.0, currency="EUR")
    scenario.event(key, q2c, "erp.customer.validated", "netsuite", start + 50 * m)
    scenario.event(key, q2c, "cpq.quote.approved", "cpq", start + 3 * h)
    scenario.event(
        key, q2c, "erp.order.created", "netsuite", now - 20 * m, aliases={"erp.sales_order": "SO-88815"}
    )

    # Failed: the ERP rejected the order.
    key, start = "OPP-1044", now - 7 * h
    scenario.event(key, q2c, "crm.opportunity.won", "salesforce", start, amount=9_900.0, currency="USD")
    scenario.event(key, q2c, "erp.customer.validated", "netsuite", start + 5 * m)
    scenario.event(key, q2c, "cpq.quote.approved", "cpq", start + 20 * m)
    scenario.event(key, q2c, "erp.order.created", "netsuite", start + 40 * m)
    scenario.event(
        key,
        q2c,
        "erp.order.rejected",
        "netsuite",
        start + 45 * m,
        status="error",
        error={"kind": "business", "message": "Credit limit exceeded for customer C-2231"},
    )

    # An alias conflict: both had started, so the announcement is refused and shown on both.
    for key, start in ((CONFLICT_OTHER, now - 30 * h), (CONFLICT_KEY, now - 29 * h)):
        for minutes, (step, system) in enumerate(PATHS[q2c]):
            aliases = {"erp.sales_order": CONFLICT_OTHER} if key == CONFLICT_KEY and minutes == 3 else {}
            scenario.event(key, q2c, step, system, start + 10 * minutes * m, aliases=aliases)

    # Not in the definitions: a step of a defined workflow, and a whole workflow.
    start = now - 20 * h
    for minutes, (step, system) in enumerate(PATHS[q2c]):
        scenario.event(UNDEFINED_STEP_KEY, q2c, step, system, start + 10 * minutes * m)
    scenario.event(UNDEFINED_STEP_KEY, q2c, UNDEFINED_STEP, "zendesk", start + 65 * m)
    start = now - 26 * h
    for minutes, step in enumerate(("import.order.read", "import.order.posted")):
        scenario.event(IMPORTED_KEY, IMPORTED_WORKFLOW, step, "netsuite", start + 3 * minutes * m)

    # Governance violation: the credit posted in Stripe before finance approved it in NetSuite.
    key, start, credit = VIOLATION_KEY, now - 2 * h, "support-credit"
    scenario.event(key, credit, "support.credit.requested", "zendesk", start, amount=1_200.0, currency="GBP")
    scenario.event(key, credit, "middleware.credit_request.validated", "mulesoft", start + 4 * m)
    scenario.event(key, credit, "billing.credit.posted", "stripe", start + 9 * m)
    scenario.event(key, credit, "erp.credit.approved", "netsuite", start + 50 * m)


def _background(scenario: Scenario, rng: random.Random, count: int) -> None:
    """Finished and open transactions over the last three days, none near a threshold."""
    now = scenario.now
    numbers = iter(range(2000, 2000 + count))
    workflows = list(PATHS)
    currencies = ["USD", "USD", "USD", "EUR", "GBP"]
    for _ in range(count):
        workflow = rng.choices(workflows, weights=[5, 3, 2, 2])[0]
        key = f"{PREFIX[workflow]}-{next(numbers)}"
        path = PATHS[workflow]
        sla, stuck_after = LIMITS[workflow]
        roll = rng.random()
        if roll < 0.72:
            # Completed, mostly within the SLA; started 6h to 3 days ago.
            steps = path
            total = sla * rng.choice([0.2, 0.35, 0.5, 0.6, 0.75, 1.3])
            start = now - dt.timedelta(hours=rng.uniform(6, 72)) - total
        elif roll < 0.9:
            # Open and progressing: the last step 5 to 30 minutes ago, well inside the SLA.
            steps = path[: rng.randint(1, len(path) - 1)]
            total = min(sla * 0.4, stuck_after * 3) * rng.uniform(0.3, 1.0)
            start = now - dt.timedelta(minutes=rng.uniform(5, 30)) - total
        else:
            # Stuck: nothing since stuck_after plus 20 minutes to 5 hours, on a middle step.
            steps = path[: rng.randint(2, len(path) - 1)]
            idle = stuck_after + dt.timedelta(minutes=rng.uniform(20, 300))
            total = dt.timedelta(minutes=rng.uniform(10, 60))
            if abs(idle + total - sla) < dt.timedelta(minutes=15):
                idle += dt.timedelta(minutes=30)  # keep clear of the SLA threshold
            start = now - idle - total
        weights = [rng.uniform(0.5, 1.5) for _ in steps[1:]]
        moments = [start]
        for weight in weights:
            moments.append(moments[-1] + total * (weight / sum(weights)))
        value = {"amount": float(rng.randrange(1_000, 90_000, 50)), "currency": rng.choice(currencies)}
        for index, ((step, system), at) in enumerate(zip(steps, moments, strict=True)):
            latency = LATENCY_MS[system] * rng.uniform(0.5, 2.5)
            extra: dict[str, Any] = value if index == 0 else {}
            if index and rng.random() < 0.12:
                scenario.event(
                    key,
                    workflow,
                    step,
                    system,
                    at - dt.timedelta(minutes=2),
                    status="error",
                    attempt=1,
                    duration_ms=round(latency * 4),
                    error={"kind": "transient", "message": f"{system} answered 503 Service Unavailable"},
                )
                extra = {**extra, "attempt": 2}
            scenario.event(key, workflow, step, system, at, duration_ms=round(latency), **extra)


def build(now: dt.datetime | None = None, seed: int = 7, background: int = 60) -> Scenario:
    """The named transactions and ``background`` others, relative to ``now``."""
    scenario = Scenario(now=now or dt.datetime.now(dt.UTC))
    _named(scenario)
    _background(scenario, random.Random(seed), background)
    return scenario


def html_labelled(now: dt.datetime | None = None) -> Scenario:
    """An order whose steps and systems, and its trace's spans and services, are named in HTML.

    Sent after the seeded scenario by the test that looks for it, so the pages other tests read
    (a tile per system) hold only ordinary names.
    """
    scenario = Scenario(now=now or dt.datetime.now(dt.UTC))
    start, trace_id = scenario.now - dt.timedelta(minutes=30), secrets.token_hex(16)
    root, child = secrets.token_hex(8), secrets.token_hex(8)
    for minutes, step, system in ((0, LINK, BOLD), (5, BOLD, LINK), (10, "cpq.quote.approved", LINK)):
        at = start + dt.timedelta(minutes=minutes)
        scenario.event(HTML_KEY, "quote-to-cash", step, system, at, duration_ms=200)
    at = start + dt.timedelta(minutes=12)
    scenario.event(
        HTML_KEY, "quote-to-cash", "erp.order.created", "netsuite", at, trace_id=trace_id, span_id=child
    )
    scenario.spans += [
        _resource(LINK, [_span(trace_id, root, "", BOLD, at, 900, 2)]),
        _resource(BOLD, [_span(trace_id, child, root, LINK, at + dt.timedelta(milliseconds=50), 700)]),
    ]
    return scenario
