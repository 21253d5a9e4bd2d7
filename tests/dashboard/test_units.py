"""The dashboard's pure parts: how it writes figures for people, reads URLs, and calls the API.

The API client is exercised through httpx's transport hook (the request it would send, the answer
it would get), so its error mapping is checked without a collector; the browser tests use a real one.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

import httpx
import pytest

from threadline.dashboard import formatting as fmt
from threadline.dashboard.actions import ActionRequest, refusal
from threadline.dashboard.alerting import delivery_lines, delivery_phrase, describe_rule, figure_facts
from threadline.dashboard.client import ApiRejected, ApiUnavailable, NotFound, QueryClient
from threadline.dashboard.pages.process_map import _wrap, columns, unexpected
from threadline.dashboard.pages.queue import forecast_text
from threadline.dashboard.schema import (
    Forecast,
    Notification,
    ProcessMap,
    Span,
    SpanEvent,
    TransactionSummary,
    Workflow,
)
from threadline.dashboard.theme import LIGHT
from threadline.dashboard.urls import Query, age_seconds, alert_path, href, tail, transaction_path
from threadline.dashboard.waterfall import figure as waterfall

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0.25, "250 ms"),
        (4.5, "4.5s"),
        (45, "45s"),
        (59.6, "1m"),
        (3 * 3600 + 12 * 60 + 30, "3h 12m"),
        (2 * 3600 + 5, "2h"),
        (2 * 86400 + 4 * 3600, "2d 4h"),
        (-90, "-1m 30s"),
    ],
)
def test_durations_read_like_a_person_says_them(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_numbers_money_and_shares() -> None:
    assert fmt.percent(0.6667) == "66.7%"
    assert fmt.percent(1.0) == "100%"
    assert fmt.percent(None) == "—"
    assert fmt.money(48_000, "USD") == "$48,000"
    assert fmt.money(12_500.5, "EUR") == "€12,500.50"
    assert fmt.money(1_200, "CHF") == "1,200 CHF"
    assert fmt.money(755_600, "USD", compact=True) == "$755.6K"
    assert fmt.money(2_000_000, "GBP", compact=True) == "£2M"
    assert fmt.money(-50, "USD") == "-$50"
    assert fmt.count(12345) == "12,345"
    assert fmt.milliseconds(85) == "85 ms"
    assert fmt.milliseconds(1260) == "1.3 s"


def test_times_are_relative_and_in_the_readers_zone() -> None:
    assert fmt.ago(NOW - dt.timedelta(hours=2, minutes=5), NOW) == "2h 5m ago"
    assert fmt.ago("2026-03-02T11:59:40Z", NOW) == "just now"
    berlin = fmt.zone("Europe/Berlin")
    assert fmt.clock("2026-03-02T09:05:00Z", berlin, NOW) == "10:05:00"
    assert fmt.clock("2026-02-27T09:05:00Z", berlin, NOW) == "27 Feb 10:05"
    assert fmt.zone("Not/AZone") is dt.UTC
    assert fmt.full_time("2026-03-02T09:05:00Z", dt.UTC).startswith("Mon 2 Mar 2026, 09:05:00")


def test_urls_hold_every_filter() -> None:
    query = Query.parse("?workflow=quote-to-cash&issue=stuck,breached&range=24h&bogus=")
    assert query.get("workflow") == "quote-to-cash"
    assert query.list("issue") == ["stuck", "breached"]
    assert query.window(NOW) == (NOW - dt.timedelta(days=1), None)
    assert Query.parse("?range=nonsense").range_key() == "7d"
    assert Query.parse("?range=all").window(NOW) == (None, None)
    explicit = Query.parse("?since=2026-03-01T00:00:00Z&range=24h").window(NOW)
    assert explicit == (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), None)
    assert href("/queue", query.with_(issue=None, system="stripe")) == (
        "/queue?range=24h&system=stripe&workflow=quote-to-cash"
    )
    assert age_seconds("4h") == 14400 and age_seconds("soon") is None
    assert transaction_path("SO/88 12") == "/transactions/SO%2F88%2012"
    assert alert_path("5e9c9d79") == "/alerts?alert=5e9c9d79"  # the link alert notifications carry
    assert tail("/transactions/SO%2F88%2012", "/transactions/") == "SO/88 12"
    assert tail("/transactions/%20PO%2077%20", "/transactions/") == " PO 77 "  # nothing trimmed


def test_process_map_columns_follow_the_real_flow() -> None:
    process: ProcessMap = {
        "workflow": "w",
        "since": None,
        "until": None,
        "transactions": 3,
        "nodes": [],
        "edges": [
            {
                "source": "a",
                "target": "b",
                "count": 3,
                "median_seconds": 1,
                "p95_seconds": 1,
                "expected": True,
            },
            {
                "source": "b",
                "target": "c",
                "count": 3,
                "median_seconds": 1,
                "p95_seconds": 1,
                "expected": True,
            },
            {
                "source": "c",
                "target": "b",
                "count": 1,
                "median_seconds": 1,
                "p95_seconds": 1,
                "expected": False,
            },
            {
                "source": "c",
                "target": "c",
                "count": 2,
                "median_seconds": 1,
                "p95_seconds": 1,
                "expected": False,
            },
        ],
        "variants": [{"steps": ["a", "b", "c"], "transactions": 3, "share": 1.0}],
        "conformance": {
            "judged": False,
            "note": "w has no definition: there is no order to judge its transactions by.",
            "transactions": 3,
            "conforming": 0,
            "deviating": 0,
            "open": 0,
            "conforming_share": None,
            "deviations": [],
        },
    }
    assert columns(process, None) == {"a": 0, "b": 1, "c": 2}  # the redo c -> b does not loop the layout
    assert _wrap("middleware.credit_request.validated") == "middleware.credit_request.\nvalidated"

    # The collector judges each edge (its `expected`); a repeated step is a loop, and without a
    # definition nothing is judged.
    workflow: Workflow = {
        "name": "w",
        "defined": True,
        "last_started_at": None,
        "sla_seconds": None,
        "stuck_after_seconds": 3600,
        "complete_on": ["c"],
        "fail_on": [],
        "steps": [],
    }
    forward, back, loop = process["edges"][0], process["edges"][2], process["edges"][3]
    assert unexpected(back, workflow) and not unexpected(forward, workflow)
    assert not unexpected(loop, workflow) and not unexpected(back, None)


def client_answering(status: int, body: object, seen: list[httpx.Request] | None = None) -> QueryClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return QueryClient("http://collector.test/", api_key="k-123", transport=httpx.MockTransport(answer))


def test_the_client_sends_the_api_key_and_only_the_filters_set() -> None:
    seen: list[httpx.Request] = []
    page = {"as_of": "2026-03-02T12:00:00Z", "total": 0, "items": [], "next_cursor": None}
    client = client_answering(200, page, seen)
    assert client.transactions(states=["stuck", "failed"], breached=False, attention=False, limit=10) == page
    request = seen[0]
    assert request.headers["Authorization"] == "Bearer k-123"
    assert request.url.path == "/api/transactions"
    assert request.url.params.get_list("state") == ["stuck", "failed"]
    assert sorted(request.url.params.multi_items()) == [
        ("breached", "false"),
        ("limit", "10"),
        ("state", "failed"),
        ("state", "stuck"),
    ]
    client.overview(since=dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    assert seen[1].url.params["since"] == "2026-02-28T23:00:00Z"
    client.transaction("SO/1")
    assert seen[2].url.raw_path == b"/api/transactions/SO%2F1"


def test_the_client_maps_failures_to_what_the_pages_show() -> None:
    with pytest.raises(NotFound, match="no transaction"):
        client_answering(
            404, {"error": "not_found", "message": "no transaction has the key 'X'"}
        ).transaction("X")
    with pytest.raises(ApiRejected, match="since is after until") as rejected:
        client_answering(400, {"error": "invalid_request", "message": "since is after until"}).overview()
    assert rejected.value.status == 400
    with pytest.raises(ApiUnavailable, match="HTTP 503"):
        client_answering(503, {"error": "store_unavailable", "message": "retry later"}).systems()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = QueryClient("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with pytest.raises(ApiUnavailable, match="cannot connect") as unavailable:
        down.workflows()
    assert unavailable.value.base_url == "http://127.0.0.1:9"
    assert "Authorization" not in down._http.headers


def test_alert_rules_read_as_sentences() -> None:
    assert describe_rule("sla_breached", {}) == "SLA breached"
    assert describe_rule("stuck_longer_than", {"duration_seconds": 7200.0}) == "Stuck longer than 2h"
    assert (
        describe_rule("stuck_or_failed_count_above", {"threshold": 10, "window_seconds": 3600.0})
        == "More than 10 stuck or failed in 1h"
    )
    rate = {"system": "netsuite", "percent": 5.0, "window_seconds": 900.0, "min_events": 20}
    assert describe_rule("system_error_rate_above", rate) == (
        "netsuite error rate above 5% over 15m (at least 20 events)"
    )
    assert describe_rule("value_at_risk_above", {"amount": 100000.0, "currency": "USD"}) == (
        "Value at risk above $100,000"
    )
    assert describe_rule("value_at_risk_above", {"amount": 5000.0}).endswith("in any currency")
    assert describe_rule("some_new_condition", {}) == "Some new condition"  # a newer collector's


def notification(
    receiver: str, status: str, attempts: int, event: str = "firing", error: str = ""
) -> Notification:
    return {
        "id": f"{receiver}-{event}",
        "receiver": receiver,
        "receiver_type": "webhook",
        "event": event,  # type: ignore[typeddict-item]
        "status": status,  # type: ignore[typeddict-item]
        "attempts": attempts,
        "last_error": error,
        "created_at": "2026-03-02T12:00:00Z" if event == "firing" else "2026-03-02T12:30:00Z",
        "next_attempt_at": None,
        "delivered_at": None,
        "history": [],
    }


def test_deliveries_say_what_became_of_each_notification() -> None:
    assert delivery_phrase(notification("hook", "delivered", 1)) == "delivered"
    assert delivery_phrase(notification("hook", "delivered", 3)) == "delivered after 3 attempts"
    assert delivery_phrase(notification("pager", "failed", 3)) == "failed after 3 attempts"
    assert delivery_phrase(notification("pager", "pending", 2)) == "retrying (2 attempts so far)"
    assert delivery_phrase(notification("slack", "skipped", 0)) == "skipped"
    assert delivery_phrase(notification("hook", "delivered", 1, "resolved")) == "resolution delivered"

    # One line per receiver, from its latest notification; errors only where it did not arrive.
    lines = delivery_lines(
        [
            notification("pager", "failed", 3, error="HTTP 500"),
            notification("hook", "delivered", 1),
            notification("hook", "pending", 1, "resolved", error="ConnectError"),
        ]
    )
    assert [(line["receiver"], line["text"], line["error"]) for line in lines] == [
        ("hook", "resolution retrying (1 attempt so far)", "ConnectError"),
        ("pager", "failed after 3 attempts", "HTTP 500"),
    ]
    assert "firing: delivered" in lines[0]["title"] and "resolved: retrying" in lines[0]["title"]


def test_alert_figures_read_like_the_rest_of_the_dashboard() -> None:
    assert figure_facts({"sla_seconds": 14400.0, "breached_by_seconds": 3900.0}) == [
        ("SLA", "4h"),
        ("Breached by", "1h 5m"),
    ]
    assert figure_facts({"value_at_risk": 667950.0, "currency": "USD", "transactions": 12}) == [
        ("Value at risk", "$667,950"),
        ("Transactions", "12"),
    ]
    assert figure_facts({"error_rate_percent": 12.5, "errors": 3}) == [
        ("Error rate", "12.5%"),
        ("Errors", "3"),
    ]


def test_an_action_request_survives_its_button_id() -> None:
    request = ActionRequest("acknowledge", kind="timeout", system="stripe", exceptions=3, acknowledged=1)
    assert ActionRequest.decode(request.encode()) == request
    assert ActionRequest.decode({"action": "resolve", "key": "OPP-1"}) == ActionRequest(
        "resolve", key="OPP-1"
    )
    for bad in ("not json", '{"action": "delete"}', '{"action": "resolve", "extra": 1}', None, "[]"):
        assert ActionRequest.decode(bad) is None
    assert "2 unacknowledged of 3 open" in str(request.explanation())
    assert "already resolved" in refusal(ApiRejected(409, "'OPP-1' was not resolved: already resolved by x"))


def test_the_client_posts_actions_with_the_same_key() -> None:
    seen: list[httpx.Request] = []
    entry = {"id": "a1", "action": "resolve", "comment": "fixed by hand"}
    client = client_answering(201, entry, seen)
    assert client.resolve("SO/1", "fixed by hand", operator="Dana") == entry
    client.acknowledge(kind="timeout", system="stripe", comment="on it")
    client.audit(transaction="SO/1", action="resolve")
    client.alerts(status="firing", limit=1)
    client.alert("abc")
    resolve, ack, audit, alerts, alert = seen
    assert resolve.method == "POST" and resolve.url.raw_path == b"/api/transactions/SO%2F1/resolve"
    assert resolve.headers["Authorization"] == "Bearer k-123"
    assert httpx.Response(200, content=resolve.content).json() == {
        "comment": "fixed by hand",
        "operator": "Dana",
    }
    assert ack.url.path == "/api/exceptions/ack" and ack.headers["Authorization"] == "Bearer k-123"
    assert httpx.Response(200, content=ack.content).json() == {
        "kind": "timeout",
        "system": "stripe",
        "workflow": "",
        "comment": "on it",
        "operator": "",
    }
    assert sorted(audit.url.params.multi_items()) == [
        ("action", "resolve"),
        ("limit", "100"),
        ("transaction", "SO/1"),
    ]
    assert sorted(alerts.url.params.multi_items()) == [("limit", "1"), ("status", "firing")]
    assert alert.url.path == "/api/alerts/abc"

    with pytest.raises(ApiRejected, match="already resolved") as conflict:
        client_answering(409, {"error": "conflict", "message": "already resolved"}).reopen("OPP-1", "x")
    assert conflict.value.status == 409


def test_a_failed_span_in_the_waterfall_says_what_was_thrown_first() -> None:
    span: Span = {
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "parent_span_id": None,
        "name": "POST /salesOrder",
        "service": "netsuite",
        "kind": "client",
        "start_time": "2026-03-02T09:00:00Z",
        "end_time": "2026-03-02T09:00:00.040000Z",
        "duration_ms": 40.0,
        "status_code": "error",
        "status_message": "declined",
        "attributes": {"http.response.status_code": 422},
        "events": [
            SpanEvent(name=f"retry.{n}", time="2026-03-02T09:00:00.010000Z", attributes={}) for n in (1, 2, 3)
        ]
        + [
            {
                "name": "exception",
                "time": "2026-03-02T09:00:00.030000Z",
                "attributes": {
                    "exception.type": "CreditLimitError",
                    "exception.message": "limit <50k> exceeded",
                },
            }
        ],
        "links": [],
        "resource": {"service.name": "netsuite"},
        "scope": {"name": "opentelemetry.instrumentation.requests", "version": "0.1", "attributes": {}},
    }
    [bar] = waterfall({"trace_id": span["trace_id"], "spans": [span], "events": []}, LIGHT, dt.UTC).data
    lines = bar.hovertext[0].split("<br>")
    assert lines[4:] == ["CreditLimitError: limit &lt;50k&gt; exceeded", "retry.1", "retry.2", "1 more event"]


def test_retention_says_how_far_back_the_data_goes() -> None:
    assert fmt.retention(30, "2026-10-28T12:00:00Z", dt.UTC) == "Data kept for 30 days, since 2026-10-28"
    assert fmt.retention(1, "2026-11-26T23:30:00Z", fmt.zone("Europe/Berlin")) == (
        "Data kept for 1 day, since 2026-11-27"
    )
    assert fmt.retention(None, None, dt.UTC) == "Data kept without a time limit"


def test_the_queue_says_when_a_transaction_is_expected_to_complete_or_breach_or_not_at_all() -> None:
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

    def text(**forecast: object) -> str:
        shown: Forecast = {
            "eta": None,
            "completion_expected": None,
            "breach_expected": False,
            "lead_seconds": None,
            "reason": "",
        }
        item = cast(TransactionSummary, {"forecast": {**shown, **forecast}, "sla": {"breached": False}})
        return forecast_text(item, now)

    assert text(eta="2026-03-02T14:10:00Z", completion_expected=True) == "ETA in 2h 10m"
    assert text(
        eta="2026-03-02T14:10:00Z", completion_expected=True, breach_expected=True, lead_seconds=2400
    ) == ("will breach in 40m")
    # stuck, and its like seldom completed: no ETA; with an SLA, the breach it is heading for
    assert text(completion_expected=False) == "not expected to complete"
    assert text(completion_expected=False, breach_expected=True, lead_seconds=2400) == "will breach in 40m"
    assert text() == fmt.DASH  # too little history
