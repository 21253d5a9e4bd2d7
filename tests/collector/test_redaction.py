"""Personal data sent to a real collector process never comes back in clear from any answer.

Sensitive keys are matched in any style (camelCase, kebab-case, snake_case, dotted, spaced) and at
any depth, wherever a sender can put them: a business event's attributes (a key-value list sent
as JSON text too) and aliases, a technical span's attributes, events, links, resource and scope.
A value that merely starts with ``redacted:`` is hashed like any other.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import unique_key
from threadline.contract.redaction import Redactor

# One clear value under each named key; none may be found in any answer.
NAMED = {
    "customerEmail": "jane@example.com",
    "cardNumber": "4111111111111111",
    "phoneNumber": "+1 555 0100",
    "contactEmail": "ap@globex.example",
    "Email-Address": "billing@initech.example",
}
NESTED_EMAIL = "nested@umbrella.example"  # an `email` inside a key-value-list value
SMUGGLED = "redacted:smuggled@example.com"  # clear text behind the prefix of a hashed value
ALIAS_EMAIL = "alias@hooli.example"  # an alias of a sensitive kind
RESOURCE_EMAIL = "ops@acme.example"
EVENT_PHONE = "+44 20 7946 0018"
CLEAR = [*NAMED.values(), NESTED_EMAIL, "smuggled@", ALIAS_EMAIL, RESOURCE_EMAIL, EVENT_PHONE]
hashed = Redactor().hash  # the collector's default keys and salt


def event(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).isoformat(),
        "correlation_id": key,
        **fields,
    }


def assert_no_clear_value(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    for clear in CLEAR:
        assert clear.lower() not in response.text.lower(), clear


def test_no_clear_personal_data_in_any_answer_whoever_sent_it(
    http: httpx.Client, live_collector: CollectorProcess
) -> None:
    json_key, otlp_key = unique_key("RED"), unique_key("RED")
    sent = event(
        json_key,
        aliases={"contact_email": ALIAS_EMAIL, "erp.sales_order": unique_key("SO")},
        attributes={
            **NAMED,
            "customer": json.dumps({"email": NESTED_EMAIL, "tier": "gold"}),
            "billing_email": SMUGGLED,
        },
    )
    assert http.post("/v1/events", json={"events": [sent]}).status_code == 200
    # A later event knows the transaction only by the e-mail address: it still joins (stable hash).
    by_alias = event(ALIAS_EMAIL, correlation_kind="contact_email", step="cpq.quote.created", system="cpq")
    assert http.post("/v1/events", json={"events": [by_alias]}).status_code == 200

    exporter = OTLPSpanExporter(endpoint=live_collector.url + "/v1/traces", timeout=10)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "stripe", "ownerEmail": RESOURCE_EMAIL})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("stripe.webhooks", "1.0", attributes={"support phone": EVENT_PHONE})
    with tracer.start_as_current_span("charge.created") as upstream:
        pass
    with tracer.start_as_current_span(
        "crm.opportunity.won",
        attributes={
            "threadline.correlation_id": otlp_key,
            "threadline.workflow": "quote-to-cash",
            "threadline.alias.contact_email": ALIAS_EMAIL,
            **NAMED,
            "customer": {"email": NESTED_EMAIL, "tier": "gold"},
            "billing_email": SMUGGLED,
        },
        links=[Link(upstream.get_span_context(), {"contactEmail": NAMED["contactEmail"]})],
    ) as span:
        span.add_event(
            "card.checked", {"customer.phoneNumber": EVENT_PHONE, "cardNumber": NAMED["cardNumber"]}
        )
    provider.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")

    answers = [
        http.get(f"/api/transactions/{json_key}"),
        http.get(f"/api/transactions/{otlp_key}"),
        http.get(f"/api/traces/{trace_id}"),
    ]
    for answer in answers:
        assert_no_clear_value(answer)

    stored = answers[0].json()
    [announcing] = [e for e in stored["events"] if e["step"] == "crm.opportunity.won"]
    assert announcing["attributes"]["customerEmail"] == hashed(NAMED["customerEmail"])
    assert announcing["attributes"]["billing_email"] == hashed(SMUGGLED)  # hashed, not trusted
    assert json.loads(announcing["attributes"]["customer"]) == {"email": hashed(NESTED_EMAIL), "tier": "gold"}
    assert {e["step"] for e in stored["events"]} == {"crm.opportunity.won", "cpq.quote.created"}
    # The transaction is found by the hash of the address, as an alias of it.
    assert http.get(f"/api/transactions/{hashed(ALIAS_EMAIL)}").json()["correlation_id"] == json_key

    [business] = [s for s in answers[2].json()["spans"] if s["name"] == "crm.opportunity.won"]
    assert business["resource"]["ownerEmail"] == hashed(RESOURCE_EMAIL)
    assert business["events"][0]["attributes"]["customer.phoneNumber"] == hashed(EVENT_PHONE)
    assert business["scope"]["attributes"] == {"support phone": hashed(EVENT_PHONE)}
