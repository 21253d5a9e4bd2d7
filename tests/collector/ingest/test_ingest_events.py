"""``POST /v1/events``: the JSON business-event contract, over real HTTP, checked through the query API.

A batch is all or nothing; an event is acknowledged only once stored; a repeated event_id counts once.
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import assert_error, business_event, event_count, post_events, unique_key


def test_an_acknowledged_event_can_be_read_back_at_once(http: httpx.Client) -> None:
    key = unique_key("OPP")
    sent = business_event(
        key,
        step="erp.order.created",
        system="netsuite",
        timestamp="2024-05-01T11:00:00+02:00",
        status="retrying",
        event_id=f"{key}-order",
        duration_ms=85.5,
        attempt=2,
        aliases={"erp.sales_order": f"SO-{key}"},
        error={"kind": "transient", "message": "503 from NetSuite"},
        amount=1250.0,
        currency="eur",
        attributes={"region": "emea"},
    )

    response = post_events(http, sent)

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "warnings": []}
    # No polling: a 2xx means the store already has it.
    [stored] = http.get(f"/api/transactions/{key}").json()["events"]
    assert stored == {
        "event_id": f"{key}-order",
        "correlation_id": key,
        "workflow": "quote-to-cash",
        "step": "erp.order.created",
        "system": "netsuite",
        "status": "retrying",
        "timestamp": "2024-05-01T09:00:00Z",
        "received_at": stored["received_at"],
        "duration_ms": 85.5,
        "attempt": 2,
        "error": {"kind": "transient", "message": "503 from NetSuite", "type": None, "stacktrace": None},
        "amount": 1250.0,
        "currency": "EUR",
        "aliases": {"erp.sales_order": f"SO-{key}"},
        "attributes": {"region": "emea"},
        "trace_id": None,
        "span_id": None,
        "source": "json",
    }


def test_an_event_missing_its_correlation_id_is_refused_with_index_field_and_reason(
    http: httpx.Client,
) -> None:
    without_key = business_event("unused")
    del without_key["correlation_id"]

    response = post_events(http, business_event(unique_key("OPP")), without_key)

    assert_error(response, 400, "invalid_events")
    assert response.json() == {
        "error": "invalid_events",
        "message": "1 problem(s) in the batch; nothing was stored",
        "problems": [{"index": 1, "field": "correlation_id", "reason": "is required"}],
    }


def test_every_problem_of_every_event_is_named(http: httpx.Client) -> None:
    key = unique_key("OPP")
    naive_time = business_event(key, timestamp="2024-05-01T09:00:00")
    two_problems = business_event(key, status="done", colour="red")
    bad_error_kind = business_event(key, error={"kind": "cosmic-ray"})

    response = post_events(http, naive_time, business_event(key), two_problems, bad_error_kind)

    body = assert_error(response, 400, "invalid_events")
    assert body["message"] == "4 problem(s) in the batch; nothing was stored"
    named = {(problem["index"], problem["field"]) for problem in body["problems"]}
    assert named == {(0, "timestamp"), (2, "status"), (2, "colour"), (3, "error.kind")}
    reasons = {(problem["index"], problem["field"]): problem["reason"] for problem in body["problems"]}
    assert reasons[2, "colour"] == "is not a field of a business event"
    assert "timezone" in reasons[0, "timestamp"]
    assert "'ok'" in reasons[2, "status"]


def test_a_batch_with_one_invalid_event_stores_none_of_its_events(http: httpx.Client) -> None:
    good_key, bad_key = unique_key("OPP"), unique_key("OPP")
    good = business_event(good_key, event_id=f"{good_key}-1")

    refused = post_events(http, good, business_event(bad_key, status="unknown"))

    assert_error(refused, 400, "invalid_events")
    assert_error(http.get(f"/api/transactions/{good_key}"), 404, "not_found")
    assert_error(http.get(f"/api/transactions/{bad_key}"), 404, "not_found")
    # The good event was not half-stored either: sent alone, it is new.
    assert post_events(http, good).json() == {"accepted": 1, "duplicates": 0, "warnings": []}


def test_an_event_repeated_within_a_batch_is_stored_once(http: httpx.Client) -> None:
    key = unique_key("OPP")
    event = business_event(key, event_id=f"{key}-won")

    response = post_events(http, event, event)

    assert response.json() == {"accepted": 1, "duplicates": 1, "warnings": []}
    assert event_count(http, key) == 1


def test_an_event_sent_again_in_a_later_batch_is_stored_once(http: httpx.Client) -> None:
    key = unique_key("OPP")
    event = business_event(key, event_id=f"{key}-won")
    assert post_events(http, event).json() == {"accepted": 1, "duplicates": 0, "warnings": []}

    again = post_events(http, business_event(key, step="erp.customer.validated"), event)

    assert again.status_code == 200, again.text
    assert again.json() == {"accepted": 1, "duplicates": 1, "warnings": []}
    assert event_count(http, key) == 2


def test_a_retry_keeps_the_first_copy_of_an_event(http: httpx.Client) -> None:
    key = unique_key("OPP")
    post_events(http, business_event(key, event_id=f"{key}-won", status="pending"))

    post_events(http, business_event(key, event_id=f"{key}-won", status="ok"))

    [stored] = http.get(f"/api/transactions/{key}").json()["events"]
    assert stored["status"] == "pending"


def test_a_retry_under_the_transaction_that_absorbed_the_first_copy_counts_once(http: httpx.Client) -> None:
    # The order's events arrive first, under its own key; then the opportunity announces the order
    # as its alias and absorbs its transaction (a link). A retry of the order's event, now sent
    # under the opportunity's key, is the same event of the same transaction.
    order, opportunity = unique_key("SO"), unique_key("OPP")
    order_created = business_event(
        order, step="erp.order.created", system="netsuite", event_id=f"{order}-created"
    )
    post_events(http, order_created)
    post_events(http, business_event(opportunity, aliases={"erp.sales_order": order}))

    again = post_events(http, {**order_created, "correlation_id": opportunity})

    assert again.json() == {"accepted": 0, "duplicates": 1, "warnings": []}
    assert event_count(http, opportunity) == 2


@pytest.mark.parametrize("event_id", ["événement-№1", "注文-42", "🧾 invoice 7", "a" * 200])
def test_an_event_id_in_any_script_counts_once(http: httpx.Client, event_id: str) -> None:
    key = unique_key("OPP")

    first, second = (post_events(http, business_event(key, event_id=event_id)) for _ in range(2))

    assert (first.json()["duplicates"], second.json()["duplicates"]) == (0, 1)
    assert event_count(http, key) == 1


def test_an_identical_event_without_event_id_is_stored_once(http: httpx.Client) -> None:
    key = unique_key("OPP")
    event = business_event(key)

    first, second = post_events(http, event), post_events(http, event)

    assert (first.json(), second.json()) == (
        {"accepted": 1, "duplicates": 0, "warnings": []},
        {"accepted": 0, "duplicates": 1, "warnings": []},
    )
    assert event_count(http, key) == 1


def test_a_batch_spanning_fourteen_years_of_months_is_stored_whole(http: httpx.Client) -> None:
    key = unique_key("OPP")
    months = [f"{year}-{month:02}-15T09:00:00Z" for year in range(2000, 2014) for month in range(1, 13)]

    response = post_events(
        http, *(business_event(key, event_id=f"{key}-{at}", timestamp=at) for at in months)
    )

    assert response.status_code == 200, response.text  # more months than ClickHouse's 100 per INSERT
    assert response.json() == {"accepted": 168, "duplicates": 0, "warnings": []}
    stored = http.get(f"/api/transactions/{key}").json()["events"]
    assert [event["timestamp"] for event in stored] == months


def test_events_with_different_event_ids_are_all_stored(http: httpx.Client) -> None:
    key = unique_key("OPP")

    response = post_events(
        http, business_event(key, event_id=f"{key}-a"), business_event(key, event_id=f"{key}-b")
    )

    assert response.json() == {"accepted": 2, "duplicates": 0, "warnings": []}
    assert event_count(http, key) == 2


def test_a_bare_list_of_events_is_accepted(http: httpx.Client) -> None:
    key = unique_key("OPP")

    response = http.post("/v1/events", json=[business_event(key)])

    assert response.json() == {"accepted": 1, "duplicates": 0, "warnings": []}
    assert event_count(http, key) == 1


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
    ids=["gzip", "deflate"],
)
def test_a_compressed_batch_is_accepted(
    http: httpx.Client, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    key = unique_key("OPP")
    body = orjson.dumps({"events": [business_event(key)]})

    response = http.post(
        "/v1/events",
        content=compress(body),
        headers={"content-type": "application/json", "content-encoding": encoding},
    )

    assert response.json() == {"accepted": 1, "duplicates": 0, "warnings": []}
    assert event_count(http, key) == 1


def test_a_json_media_type_with_parameters_is_accepted(http: httpx.Client) -> None:
    key = unique_key("OPP")

    response = http.post(
        "/v1/events",
        content=orjson.dumps({"events": [business_event(key)]}),
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )

    assert response.status_code == 200, response.text
    assert event_count(http, key) == 1


def test_an_event_stamped_years_ahead_is_refused_naming_its_timestamp(http: httpx.Client) -> None:
    # Acknowledged, it would be missing from every answer "as of now" for five years.
    key, now = unique_key("OPP"), dt.datetime.now(dt.UTC)
    five_years_ahead = now + dt.timedelta(days=5 * 365)
    # A sender's clock a minute fast is normal: the default skew (10 minutes) lets it through.
    a_minute_ahead = now + dt.timedelta(minutes=1)

    refused = post_events(http, business_event(key, timestamp=five_years_ahead.isoformat()))
    accepted = post_events(
        http, business_event(key, step="erp.order.created", timestamp=a_minute_ahead.isoformat())
    )

    body = assert_error(refused, 400, "invalid_events")
    [problem] = body["problems"]
    assert (problem["index"], problem["field"]) == (0, "timestamp")
    assert "is 1825 days ahead of the collector's clock; at most 10 minutes" in problem["reason"]
    assert "(THREADLINE_MAX_FUTURE_SKEW)" in problem["reason"]
    assert accepted.status_code == 200, accepted.text
    # Answers show the accepted one once its time has come.
    found = http.get(f"/api/transactions/{key}", params={"as_of": a_minute_ahead.isoformat()}).json()
    assert [event["step"] for event in found["events"]] == ["erp.order.created"]


def test_the_allowed_skew_is_a_setting(new_collector: Callable[..., CollectorProcess]) -> None:
    collector = new_collector(env={"THREADLINE_MAX_FUTURE_SKEW": "2h"}).start()
    key, now = unique_key("OPP"), dt.datetime.now(dt.UTC)

    with httpx.Client(base_url=collector.url, timeout=30) as http:
        accepted = post_events(http, business_event(key, timestamp=(now + dt.timedelta(hours=1)).isoformat()))
        refused = post_events(http, business_event(key, timestamp=(now + dt.timedelta(hours=3)).isoformat()))

    assert accepted.status_code == 200, accepted.text
    [problem] = assert_error(refused, 400, "invalid_events")["problems"]
    assert "at most 2 hours is accepted" in problem["reason"]


def test_a_failed_event_without_an_error_object_gets_the_default_error_kind(http: httpx.Client) -> None:
    key = unique_key("OPP")

    assert post_events(http, business_event(key, status="error")).status_code == 200

    detail = http.get(f"/api/transactions/{key}").json()
    [event] = detail["events"]
    assert event["error"] == {"kind": "transient", "message": "", "type": None, "stacktrace": None}
    [step] = [step for step in detail["steps"] if step["name"] == "crm.opportunity.won"]
    assert step["error"]["kind"] == "transient"


def test_an_error_may_carry_its_type_and_stack_trace(http: httpx.Client) -> None:
    key = unique_key("OPP")
    error = {"kind": "business", "message": "card declined", "type": "CardError", "stacktrace": "at pay()"}

    assert post_events(http, business_event(key, status="error", error=error)).status_code == 200

    [event] = http.get(f"/api/transactions/{key}").json()["events"]
    assert event["error"] == error


@pytest.mark.parametrize("amount", [1e308, -1e308, 1e16, -2e15], ids=["1e308", "-1e308", "1e16", "-2e15"])
def test_an_amount_larger_than_any_invoice_is_refused_naming_it(http: httpx.Client, amount: float) -> None:
    # 1e308 is a finite float: stored, it summed to an infinite value at risk.
    key = unique_key("OPP")

    response = post_events(http, business_event(key, amount=amount, currency="USD"))

    body = assert_error(response, 400, "invalid_events")
    [problem] = body["problems"]
    assert problem["field"] == "amount"
    assert "1,000,000,000,000,000" in problem["reason"]
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_an_event_that_is_not_an_object_is_named_by_its_index(http: httpx.Client) -> None:
    response = post_events(http, business_event(unique_key("OPP")), None)  # type: ignore[arg-type]

    body = assert_error(response, 400, "invalid_events")
    assert body["problems"] == [{"index": 1, "field": "event", "reason": "must be a JSON object"}]
