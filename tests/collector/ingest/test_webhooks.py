"""``POST /v1/webhooks/{source}``: SaaS senders' own webhook bodies become business events through the
shipped mappings file, over real HTTP to a real collector, checked through the query API.

A delivery is signed where the sender signs (Stripe), counted once when re-delivered, and refused
whole (nothing stored) when unsigned, unmatched or mapped to a bad value.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import assert_error, event_count, unique_key
from tests.support.stores import Stores
from threadline.collector.config import EXAMPLE_WEBHOOKS
from threadline.collector.ingest.webhooks import WebhookError, load

pytestmark = pytest.mark.slow

STRIPE_SECRET = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
NOW = int(time.time())
WHEN = "2026-11-02T09:30:00Z"


def stripe_signature(body: bytes, secret: str = STRIPE_SECRET, signed_at: int | None = None) -> str:
    """The Stripe-Signature header as Stripe documents it: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">."""
    signed_at = int(time.time()) if signed_at is None else signed_at
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={signed_at},v1={digest}"


@pytest.fixture(scope="module")
def live_collector(stores: Stores) -> Iterator[CollectorProcess]:
    """This module's collector (``http`` speaks to it): the shipped mappings file, Stripe's secret."""
    collector = stores.collector(
        {"THREADLINE_WEBHOOKS": str(EXAMPLE_WEBHOOKS), "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET}
    ).start()
    yield collector
    collector.stop()


def post(
    http: httpx.Client, source: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    raw = orjson.dumps(body)
    signed = {"stripe-signature": stripe_signature(raw)} if source == "stripe" else {}
    return http.post(
        f"/v1/webhooks/{source}",
        content=raw,
        headers={"content-type": "application/json", **signed, **(headers or {})},
    )


# Bodies as each sender documents them (trimmed of fields no mapping reads), keyed by ``key``.


def stripe_subscription_created(key: str) -> dict[str, Any]:
    return {
        "id": f"evt_{key}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": NOW - 60,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_8Kj2nQ", "idempotency_key": "5f3c1e0a"},
        "type": "customer.subscription.created",
        "data": {
            "object": {
                "id": f"sub_{key}",
                "object": "subscription",
                "customer": f"cus_{key}",
                "currency": "usd",
                "status": "active",
                "created": NOW - 61,
                "metadata": {"opportunity_id": key},
                "items": {
                    "object": "list",
                    "data": [
                        {"id": "si_1", "object": "subscription_item", "quantity": 1,
                         "price": {"id": "price_1", "unit_amount": 4_000_000, "currency": "usd"}},
                        {"id": "si_2", "object": "subscription_item", "quantity": 1,
                         "price": {"id": "price_2", "unit_amount": 800_000, "currency": "usd"}},
                    ],
                },
            }
        },
    }  # fmt: skip


def stripe_invoice_paid(key: str) -> dict[str, Any]:
    return {
        "id": f"evt_{key}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": NOW - 30,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "invoice.paid",
        "data": {
            "object": {
                "id": f"in_{key}",
                "object": "invoice",
                "number": "A1B2C3-0007",
                "customer": f"cus_{key}",
                "currency": "jpy",
                "amount_paid": 520_000,
                "status": "paid",
                "status_transitions": {"paid_at": NOW - 31, "finalized_at": NOW - 3600},
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {
                        "subscription": f"sub_{key}",
                        "metadata": {"opportunity_id": key},
                    },
                },
            }
        },
    }


def zendesk_ticket_created(key: str) -> dict[str, Any]:
    return {
        "account_id": 12514403,
        "id": f"cbe4028c-{key}",
        "subject": f"zen:ticket:{key}",
        "time": WHEN,
        "type": "zen:event-type:ticket.created",
        "zendesk_event_version": "2022-11-06",
        "detail": {
            "id": key,
            "actor_id": "8447388090494",
            "brand_id": "8447346621310",
            "created_at": WHEN,
            "priority": "HIGH",
            "status": "NEW",
            "subject": "Credit for the March outage",
            "tags": ["credit_request", "enterprise"],
            "type": "TASK",
            "updated_at": WHEN,
            "via": {"channel": "web_service"},
        },
        "event": {},
    }


def zendesk_ticket_solved(key: str) -> dict[str, Any]:
    body = zendesk_ticket_created(key)
    body.update(
        id=f"d2e0f1a7-{key}",
        type="zen:event-type:ticket.status_changed",
        event={"current": "SOLVED", "previous": "OPEN"},
    )
    return body


def salesforce_opportunity_won(key: str) -> dict[str, Any]:
    return {
        "channel": "/event/Opportunity_Won__e",
        "clientId": "f4pg6yb7p2rq2m1",
        "data": {
            "schema": "dffQ2QLzDNHqwB8_sHMxdA",
            "payload": {
                "CreatedDate": "2026-11-02T09:30:00.000Z",
                "CreatedById": "005xx000001X8UzAAK",
                "Opportunity_Id__c": key,
                "Amount__c": 48000,
                "CurrencyIsoCode__c": "USD",
            },
            "event": {"replayId": 18, "EventUuid": f"a8b0e1b0-{key}"},
        },
    }


def netsuite_sales_order_created(key: str) -> dict[str, Any]:
    return {
        "recordType": "salesorder",
        "id": 88812,
        "eventType": "create",
        "timestamp": "2026-11-02T10:05:00Z",
        "record": {
            "tranid": f"SO-{key}",
            "entity": "1042",
            "custbody_opportunity_id": key,
            "total": 48000.0,
            "currency": "USD",
            "orderstatus": "B",
        },
    }


# source, mapping, body, and what the stored event must hold (besides the key and source).
SHIPPED: list[tuple[str, str, Callable[[str], dict[str, Any]], dict[str, Any]]] = [
    (
        "stripe",
        "subscription-created",
        stripe_subscription_created,
        {"workflow": "quote-to-cash", "step": "billing.subscription.activated", "system": "stripe",
         "status": "ok", "amount": 48000.0, "currency": "USD",
         "aliases": {"billing.subscription": "sub_{key}", "billing.customer": "cus_{key}"},
         "attributes": {"livemode": "false"}, "event_id": "evt_{key}"},
    ),
    (
        "stripe",
        "invoice-paid",
        stripe_invoice_paid,
        {"workflow": "subscription-renewal", "step": "billing.payment.captured", "system": "stripe",
         "amount": 520000.0, "currency": "JPY",
         "aliases": {"billing.invoice": "in_{key}", "billing.subscription": "sub_{key}"},
         "attributes": {"invoice_number": "A1B2C3-0007"}, "event_id": "evt_{key}"},
    ),
    (
        "zendesk",
        "credit-requested",
        zendesk_ticket_created,
        {"workflow": "support-credit", "step": "support.credit.requested", "system": "zendesk",
         "timestamp": WHEN, "attributes": {"priority": "HIGH", "webhook": "01GYRFQ8ZKBJ3GTMHVA0Q4SJTH"},
         "event_id": "cbe4028c-{key}"},
    ),
    (
        "zendesk",
        "customer-notified",
        zendesk_ticket_solved,
        {"workflow": "support-credit", "step": "support.customer.notified", "event_id": "d2e0f1a7-{key}"},
    ),
    (
        "salesforce",
        "opportunity-won",
        salesforce_opportunity_won,
        {"workflow": "quote-to-cash", "step": "crm.opportunity.won", "system": "salesforce",
         "timestamp": WHEN, "amount": 48000.0, "currency": "USD", "attributes": {"replay_id": "18"},
         "event_id": "a8b0e1b0-{key}"},
    ),
    (
        "netsuite",
        "sales-order-created",
        netsuite_sales_order_created,
        {"workflow": "quote-to-cash", "step": "erp.order.created", "system": "netsuite",
         "timestamp": "2026-11-02T10:05:00Z", "amount": 48000.0, "currency": "USD",
         "aliases": {"erp.sales_order": "SO-{key}"}, "event_id": "netsuite:salesorder:88812:create"},
    ),
]  # fmt: skip


def _filled(value: object, key: str) -> object:
    if isinstance(value, str):
        return value.replace("{key}", key)
    if isinstance(value, dict):
        return {name: _filled(item, key) for name, item in value.items()}
    return value


@pytest.mark.parametrize(("source", "mapping", "body", "expected"), SHIPPED, ids=[s[1] for s in SHIPPED])
def test_each_shipped_mapping_turns_its_senders_body_into_a_stored_event(
    http: httpx.Client,
    source: str,
    mapping: str,
    body: Callable[[str], dict[str, Any]],
    expected: dict[str, Any],
) -> None:
    key = unique_key(source.upper())

    response = post(http, source, body(key), {"x-zendesk-webhook-id": "01GYRFQ8ZKBJ3GTMHVA0Q4SJTH"})

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "warnings": [], "mapping": mapping}
    [stored] = http.get(f"/api/transactions/{key}").json()["events"]
    assert stored["correlation_id"] == key
    assert stored["source"] == "webhook"
    wanted = _filled(expected, key)
    assert isinstance(wanted, dict)
    assert {field: stored[field] for field in wanted} == wanted


def test_a_stripe_timestamp_in_unix_seconds_is_the_event_time(http: httpx.Client) -> None:
    key = unique_key("SUB")
    assert post(http, "stripe", stripe_subscription_created(key)).status_code == 200
    [stored] = http.get(f"/api/transactions/{key}").json()["events"]
    assert stored["timestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 60))


def test_a_redelivered_webhook_counts_once(http: httpx.Client) -> None:
    key = unique_key("INV")
    body = stripe_invoice_paid(key)

    first = post(http, "stripe", body)
    again = post(http, "stripe", body)  # Stripe retries with the same event id, signed anew

    assert first.json()["accepted"] == 1, first.text
    assert again.status_code == 200, again.text
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    assert event_count(http, key) == 1


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (lambda raw: stripe_signature(raw, secret="whsec_someone_else"), "does not match"),
        (lambda raw: stripe_signature(raw, signed_at=int(time.time()) - 600), "s old; at most 300 s"),
        (lambda raw: f"t={int(time.time())}", "no v1 signature"),
        (None, "header is missing"),
    ],
    ids=["wrong-secret", "too-old", "no-v1", "missing"],
)
def test_a_stripe_delivery_without_a_valid_signature_is_refused_and_nothing_stored(
    http: httpx.Client, signature: Callable[[bytes], str] | None, reason: str
) -> None:
    key = unique_key("SUB")
    raw = orjson.dumps(stripe_subscription_created(key))
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature(raw)

    response = http.post("/v1/webhooks/stripe", content=raw, headers=headers)

    body = assert_error(response, 401, "invalid_signature")
    assert reason in body["message"], body
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_a_signature_over_another_body_is_refused(http: httpx.Client) -> None:
    key = unique_key("SUB")
    signed = orjson.dumps(stripe_subscription_created(key))
    tampered = signed.replace(b"4000000", b"4")

    response = http.post(
        "/v1/webhooks/stripe",
        content=tampered,
        headers={"content-type": "application/json", "stripe-signature": stripe_signature(signed)},
    )

    assert_error(response, 401, "invalid_signature")
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_a_body_no_mapping_matches_is_refused_with_each_mapping_tried_and_why(http: httpx.Client) -> None:
    key = unique_key("CH")
    refund = {**stripe_invoice_paid(key), "type": "charge.refunded"}

    response = post(http, "stripe", refund)

    body = assert_error(response, 422, "no_mapping_matched")
    assert body["message"] == (
        "no mapping of source 'stripe' matches this body (tried subscription-created, invoice-paid); "
        "nothing was stored"
    )
    assert body["problems"] == [
        {"field": "subscription-created.when",
         "reason": "body.type == 'customer.subscription.created' is false for this body"},
        {"field": "invoice-paid.when", "reason": "body.type == 'invoice.paid' is false for this body"},
    ]  # fmt: skip
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_a_mapped_value_the_event_contract_refuses_is_a_400_naming_mapping_and_field(
    http: httpx.Client,
) -> None:
    key = unique_key("OPP")
    body = salesforce_opportunity_won(key)
    body["data"]["payload"]["Amount__c"] = "lots"

    response = post(http, "salesforce", body)

    problems = assert_error(response, 400, "invalid_event")["problems"]
    assert [(problem["field"], problem["reason"].split(":")[0]) for problem in problems] == [
        ("amount", "mapping 'opportunity-won' (body.data.payload.Amount__c)")
    ]
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_an_expression_that_fails_on_the_body_is_a_400_naming_mapping_and_field(http: httpx.Client) -> None:
    key = unique_key("INV")
    body = stripe_invoice_paid(key)
    body["data"]["object"]["amount_paid"] = "5200"  # from_minor_units takes a number

    response = post(http, "stripe", body)

    [problem] = assert_error(response, 400, "invalid_event")["problems"]
    assert problem["field"] == "amount"
    assert problem["reason"].startswith("mapping 'invoice-paid': from_minor_units(")
    assert "invalid type for value: 5200" in problem["reason"]
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_a_required_field_the_body_lacks_is_a_400_naming_mapping_and_field(http: httpx.Client) -> None:
    body = netsuite_sales_order_created("unused")
    del body["record"]["custbody_opportunity_id"]

    response = post(http, "netsuite", body)

    assert assert_error(response, 400, "invalid_event")["problems"] == [
        {
            "field": "correlation_id",
            "reason": "mapping 'sales-order-created': body.record.custbody_opportunity_id is null "
            "for this body",
        }
    ]


def test_an_unknown_source_is_a_404_naming_the_sources(http: httpx.Client) -> None:
    response = http.post("/v1/webhooks/hubspot", json={"objectId": 1})
    body = assert_error(response, 404, "unknown_webhook_source")
    assert body["message"] == (
        "no webhook source 'hubspot' (sources: cloudevents, netsuite, salesforce, stripe, zendesk)"
    )


def test_a_body_that_is_not_json_is_a_400(http: httpx.Client) -> None:
    response = http.post(
        "/v1/webhooks/zendesk", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_body")


# The mappings file is checked at start: one line naming the file, source, mapping and field.


def mappings_file(tmp_path: Path, event: str, when: str = "body.kind == 'won'") -> Path:
    path = tmp_path / "webhooks.yaml"
    path.write_text(
        f'sources:\n  crm:\n    mappings:\n      - name: won\n        when: "{when}"\n        event:\n{event}'
    )
    return path


VALID_EVENT = (
    "          correlation_id: body.id\n          workflow: \"'quote-to-cash'\"\n"
    "          step: \"'crm.opportunity.won'\"\n          system: \"'crm'\"\n          timestamp: body.at\n"
)


def test_every_shipped_webhook_mapping_is_tested_end_to_end() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
        loaded = load(EXAMPLE_WEBHOOKS)
    shipped = {name: [m.name for m in source.mappings] for name, source in loaded.sources.items()}
    assert shipped.pop("cloudevents") == ["s4hana-sales-order-created"]  # test_cloud_events.py
    assert shipped == {
        source: [mapping for other, mapping, _, _ in SHIPPED if other == source]
        for source in ("stripe", "zendesk", "salesforce", "netsuite")
    }


@pytest.mark.parametrize(
    ("event", "when", "where"),
    [
        (
            VALID_EVENT + "          amount: body.[\n",
            "body.kind == 'won'",
            "source 'crm', mapping 'won': event.amount: 'body.[' is not a JMESPath expression",
        ),
        (
            VALID_EVENT + "          stepp: body.step\n",
            "body.kind == 'won'",
            "source 'crm', mapping 'won': event.stepp: is not a field (check its spelling)",
        ),
        (
            VALID_EVENT.replace("          timestamp: body.at\n", ""),
            "body.kind == 'won'",
            "source 'crm', mapping 'won': event.timestamp: is required",
        ),
        (
            VALID_EVENT,
            "cents(body.x)",
            "source 'crm', mapping 'won': when: 'cents(body.x)' calls unknown function(s) cents",
        ),
    ],
    ids=["bad-expression", "unknown-field", "missing-field", "unknown-function"],
)
def test_a_bad_mapping_is_named_with_its_file_source_mapping_and_field(
    tmp_path: Path, event: str, when: str, where: str
) -> None:
    path = mappings_file(tmp_path, event, when)
    with pytest.raises(WebhookError) as refused:
        load(path)
    assert str(refused.value).startswith(f"{path}: {where}"), str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_signing_secret_that_is_not_set_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(
        "sources:\n  stripe:\n    signature: {scheme: stripe, secret_env: NO_SUCH_SECRET_VARIABLE}\n"
        "    mappings:\n      - name: any\n        event:\n" + VALID_EVENT
    )
    with pytest.raises(
        WebhookError, match=r"signature\.secret_env: the variable NO_SUCH_SECRET_VARIABLE is not set"
    ):
        load(path)
