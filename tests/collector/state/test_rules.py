"""Transaction state, derived from events, through the real HTTP API of a real collector.

Every scenario follows one quote-to-cash transaction of workflows.example.yaml:

    crm.opportunity.won → erp.customer.validated (within 15m) ┐
                        → cpq.quote.approved ─────────────────┴→ erp.order.created (within 30m)
    → billing.subscription.activated (within 1h) → support.entitlement.created (completes it)
    erp.order.rejected fails it; SLA 4h from the first event; stuck after 1h without progress.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from threadline.collector.config import EXAMPLE_WORKFLOWS

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HAPPY_PATH = [
    ("crm.opportunity.won", "salesforce", 0),
    ("erp.customer.validated", "netsuite", 5),
    ("cpq.quote.approved", "cpq", 8),
    ("erp.order.created", "netsuite", 20),
    ("billing.subscription.activated", "stripe", 50),
    ("support.entitlement.created", "zendesk", 70),
]
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    collector = CollectorProcess(store_dir=tmp_path_factory.mktemp("state") / "store").start()
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client
    collector.stop()


def new_key(prefix: str = "OPP") -> str:
    return f"{prefix}-{next(_keys):05d}"


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def event(key: str, step: str, system: str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": fields.pop("workflow", "quote-to-cash"),
        "step": step,
        "system": system,
        "timestamp": at(minutes),
        **fields,
    }


def send(api: httpx.Client, *events: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.text
    return response.json()


def state(api: httpx.Client, key: str, minutes: float) -> dict[str, Any]:
    response = api.get(f"/api/transactions/{key}", params={"as_of": at(minutes)})
    assert response.status_code == 200, response.text
    return response.json()


def happy_path(key: str, until: int | None = None, **per_step: dict[str, Any]) -> list[dict[str, Any]]:
    steps = HAPPY_PATH if until is None else HAPPY_PATH[:until]
    return [event(key, step, system, minutes, **per_step.get(step, {})) for step, system, minutes in steps]


def test_the_happy_path_completes_within_its_sla(api: httpx.Client) -> None:
    key = new_key()
    send(api, *happy_path(key))
    found = state(api, key, 120)
    assert found["state"] == "completed"
    assert found["completed_at"] == at(70).replace("+00:00", "Z")
    assert found["sla"] == {
        "limit_seconds": 14400.0,
        "elapsed_seconds": 4200.0,
        "breached": False,
        "breached_by_seconds": 0.0,
    }
    assert found["waiting_on"] == [] and found["missing_steps"] == [] and found["violations"] == []
    # A failure step is an outcome, not a step to expect: not listed until it happens.
    assert [(step["name"], step["state"]) for step in found["steps"]] == [
        (step, "done") for step, _, _ in HAPPY_PATH
    ]
    assert [e["step"] for e in found["events"]] == [step for step, _, _ in HAPPY_PATH]


def test_an_open_transaction_waits_on_the_next_step_and_its_system(api: httpx.Client) -> None:
    key = new_key()
    send(api, *happy_path(key, until=4))
    found = state(api, key, 30)
    assert found["state"] == "in_progress"
    assert found["waiting_on"] == [
        {
            "step": "billing.subscription.activated",
            "system": "stripe",
            "expected_system": "stripe",
            "due_since": at(20).replace("+00:00", "Z"),
            "within_seconds": 3600.0,
            "overdue": False,
        }
    ]
    assert found["sla"]["elapsed_seconds"] == 1800.0


def test_a_transient_error_retried_and_recovered_is_one_step_with_two_attempts(api: httpx.Client) -> None:
    key = new_key()
    failed_try = event(
        key,
        "erp.order.created",
        "netsuite",
        15,
        status="error",
        attempt=1,
        error={"kind": "transient", "message": "NetSuite 503"},
    )
    send(api, *happy_path(key), failed_try, *[])
    found = state(api, key, 120)
    order = next(step for step in found["steps"] if step["name"] == "erp.order.created")
    assert found["state"] == "completed"
    assert order["state"] == "done" and order["attempts"] == 2 and order["error"] is None
    assert found["error_count"] == 1


def test_an_unrecovered_error_leaves_the_step_failed_and_the_transaction_waiting(api: httpx.Client) -> None:
    key = new_key()
    failed_try = event(
        key,
        "erp.order.created",
        "netsuite",
        15,
        status="error",
        error={"kind": "timeout", "message": "no answer in 30s"},
    )
    send(api, *happy_path(key, until=3), failed_try)
    found = state(api, key, 30)
    order = next(step for step in found["steps"] if step["name"] == "erp.order.created")
    assert order["state"] == "failed"
    assert order["error"] == {
        "kind": "timeout",
        "message": "no answer in 30s",
        "type": None,
        "stacktrace": None,
    }
    assert [w["step"] for w in found["waiting_on"]] == ["erp.order.created"]


def test_no_progress_for_stuck_after_makes_it_stuck(api: httpx.Client) -> None:
    key = new_key()
    send(api, *happy_path(key, until=4))  # the order was created at +20m, then nothing
    assert state(api, key, 20 + 59)["state"] == "in_progress"
    stuck = state(api, key, 20 + 60)
    assert stuck["state"] == "stuck"
    assert [w["step"] for w in stuck["waiting_on"]] == ["billing.subscription.activated"]
    assert stuck["waiting_on"][0]["overdue"] is False  # due for exactly its 1h `within`, not more
    assert state(api, key, 20 + 61)["waiting_on"][0]["overdue"] is True


def test_retries_without_success_are_not_progress(api: httpx.Client) -> None:
    key = new_key()
    retries = [
        event(key, "billing.subscription.activated", "stripe", 30 + 10 * n, status="retrying", attempt=n + 1)
        for n in range(8)
    ]
    send(api, *happy_path(key, until=4), *retries)
    found = state(api, key, 110)
    assert found["state"] == "stuck"
    assert found["retry_count"] == 8


def test_completed_late_is_completed_with_the_sla_breached_by_how_much(api: httpx.Client) -> None:
    key = new_key()
    send(api, *happy_path(key, until=5), event(key, "support.entitlement.created", "zendesk", 300))
    found = state(api, key, 400)
    assert found["state"] == "completed"
    assert found["sla"] == {
        "limit_seconds": 14400.0,
        "elapsed_seconds": 18000.0,
        "breached": True,
        "breached_by_seconds": 3600.0,
    }


def test_as_of_answers_before_and_after_each_deadline(api: httpx.Client) -> None:
    key = new_key()
    send(api, *happy_path(key, until=5))  # billing activated at +50m; entitlement never comes
    early = state(api, key, 6)
    assert early["state"] == "in_progress"
    assert [e["step"] for e in early["events"]] == ["crm.opportunity.won", "erp.customer.validated"]
    assert state(api, key, 50 + 59)["state"] == "in_progress"
    assert state(api, key, 50 + 60)["state"] == "stuck"
    assert state(api, key, 239)["sla"]["breached"] is False
    assert state(api, key, 241)["sla"]["breached"] is True
    assert api.get(f"/api/transactions/{key}", params={"as_of": at(-1)}).status_code == 404  # nothing yet


def test_events_in_reverse_order_give_the_same_answer(api: httpx.Client) -> None:
    forward, backward = new_key(), new_key()
    send(api, *happy_path(forward, until=5))
    for item in reversed(happy_path(backward, until=5)):
        send(api, item)  # one request each, latest first
    a, b = state(api, forward, 200), state(api, backward, 200)
    for field in ("state", "waiting_on", "sla", "missing_steps", "violations", "started_at", "last_activity"):
        assert a[field] == b[field], field
    assert [e["step"] for e in b["events"]] == [e["step"] for e in a["events"]]


def test_duplicates_count_once(api: httpx.Client) -> None:
    key = new_key()
    events = [{**item, "event_id": f"{key}-{n}"} for n, item in enumerate(happy_path(key, until=3))]
    assert send(api, *events, events[0]) == {"accepted": 3, "duplicates": 1, "warnings": []}
    assert send(api, *events) == {"accepted": 0, "duplicates": 3, "warnings": []}
    assert state(api, key, 60)["event_count"] == 3


def test_an_alias_used_before_it_was_announced_joins_the_transaction(api: httpx.Client) -> None:
    key, sales_order = new_key(), new_key("SO")
    # NetSuite knows only its sales order number, and reports first.
    send(api, event(sales_order, "erp.order.created", "netsuite", 20))
    assert state(api, sales_order, 30)["correlation_id"] == sales_order  # alone, for now
    # Then CRM and CPQ report, and the validation step announces the sales order as an alias.
    send(
        api,
        event(key, "crm.opportunity.won", "salesforce", 0),
        event(key, "erp.customer.validated", "netsuite", 5, aliases={"erp.sales_order": sales_order}),
        event(key, "cpq.quote.approved", "cpq", 8),
    )
    for lookup in (key, sales_order):
        found = state(api, lookup, 30)
        assert found["correlation_id"] == key
        assert found["aliases"] == {"erp.sales_order": sales_order}
        assert [e["step"] for e in found["events"]] == [step for step, _, _ in HAPPY_PATH[:4]]
        assert [w["step"] for w in found["waiting_on"]] == ["billing.subscription.activated"]


def test_an_alias_announced_first_catches_later_events(api: httpx.Client) -> None:
    key, sales_order = new_key(), new_key("SO")
    send(api, event(key, "crm.opportunity.won", "salesforce", 0, aliases={"erp.sales_order": sales_order}))
    send(api, event(sales_order, "erp.customer.validated", "netsuite", 5))
    found = state(api, sales_order, 10)
    assert found["correlation_id"] == key and found["event_count"] == 2


def test_an_alias_naming_another_started_transaction_is_refused_and_shown_on_both(
    api: httpx.Client,
) -> None:
    # H-1 is an opportunity of its own, started; H-19 announces "H-1" as its sales order number.
    first, second = new_key("H"), new_key("H")
    send(api, *happy_path(first, until=2))
    send(
        api,
        event(second, "crm.opportunity.won", "salesforce", 1),
        event(second, "erp.customer.validated", "netsuite", 6, aliases={"erp.sales_order": first}),
    )
    mine, theirs = state(api, second, 30), state(api, first, 30)
    assert mine["correlation_id"] == second and theirs["correlation_id"] == first  # not merged
    assert mine["event_count"] == 2 and theirs["event_count"] == 2
    assert mine["aliases"] == {}
    for found, other in ((mine, first), (theirs, second)):
        [conflict] = found["alias_conflicts"]
        assert conflict["reason"] == "both_started"
        assert conflict["alias"] == first and conflict["kind"] == "erp.sales_order"
        assert conflict["announced_by"] == second and conflict["other_transaction"] == other
        assert "already started" in conflict["message"]


def test_an_alias_of_one_kind_never_matches_a_key_of_another(api: httpx.Client) -> None:
    # K is declared an opportunity id; the same text announced as a sales order is another key, even
    # though K's transaction has not started yet (its first event is a later step).
    key, other = new_key("K"), new_key()
    send(api, event(key, "erp.customer.validated", "netsuite", 5, correlation_kind="crm.opportunity"))
    send(api, event(other, "crm.opportunity.won", "salesforce", 0, aliases={"erp.sales_order": key}))
    assert state(api, key, 30)["correlation_id"] == key
    [conflict] = state(api, other, 30)["alias_conflicts"]
    assert conflict["reason"] == "other_kind" and conflict["other_transaction"] == key
    assert "is a crm.opportunity key" in conflict["message"]
    # The same kind links as before.
    sales_order = new_key("SO")
    send(api, event(sales_order, "erp.order.created", "netsuite", 20, correlation_kind="erp.sales_order"))
    send(api, event(other, "cpq.quote.approved", "cpq", 8, aliases={"erp.sales_order": sales_order}))
    assert state(api, sales_order, 30)["correlation_id"] == other


def test_an_alias_already_claimed_stays_with_its_first_claim_and_both_say_so(api: httpx.Client) -> None:
    first, second, sales_order = new_key(), new_key(), new_key("SO")
    send(api, event(first, "crm.opportunity.won", "salesforce", 0, aliases={"erp.sales_order": sales_order}))
    send(api, event(second, "crm.opportunity.won", "salesforce", 1, aliases={"erp.sales_order": sales_order}))
    assert state(api, sales_order, 30)["correlation_id"] == first
    [conflict] = state(api, second, 30)["alias_conflicts"]
    assert conflict["reason"] == "already_claimed" and conflict["other_transaction"] == first
    assert [c["other_transaction"] for c in state(api, first, 30)["alias_conflicts"]] == [second]


def test_a_step_declares_the_kind_of_key_its_system_sends(tmp_path: Path) -> None:
    definitions = tmp_path / "workflows.yaml"
    definitions.write_text(
        (EXAMPLE_WORKFLOWS)
        .read_text()
        .replace(
            "- {name: erp.order.created, system: netsuite,",
            "- {name: erp.order.created, system: netsuite, key: erp.sales_order,",
        )
    )
    assert "key: erp.sales_order" in definitions.read_text()
    collector = CollectorProcess(store_dir=tmp_path / "store", workflows=definitions).start()
    try:
        with httpx.Client(base_url=collector.url, timeout=30) as client:
            order, invoice_holder, opportunity = "77001", "INV-1", "OPP-1"
            send(client, event(order, "erp.order.created", "netsuite", 20))  # an ERP number, by definition
            send(
                client,
                event(
                    invoice_holder, "crm.opportunity.won", "salesforce", 0, aliases={"billing.invoice": order}
                ),
            )
            assert (
                state(client, order, 30)["correlation_id"] == order
            )  # an invoice number is not an order number
            send(
                client,
                event(
                    opportunity, "crm.opportunity.won", "salesforce", 0, aliases={"erp.sales_order": order}
                ),
            )
            assert state(client, order, 30)["correlation_id"] == opportunity
    finally:
        collector.stop()


def test_equal_event_times_keep_their_arrival_order(api: httpx.Client) -> None:
    # Two events at the same moment, their ids sorting against their arrival: the later one sent
    # carries the amount that counts, and the first one sent decides the workflow.
    key = new_key()
    send(
        api,
        event(key, "crm.opportunity.won", "salesforce", 0, event_id=f"z-{key}", amount=100.0, currency="USD"),
        event(key, "crm.opportunity.won", "salesforce", 0, event_id=f"y-{key}", workflow="support-credit"),
    )
    send(
        api,
        event(key, "crm.opportunity.won", "salesforce", 0, event_id=f"a-{key}", amount=200.0, currency="EUR"),
    )
    found = state(api, key, 10)
    assert (found["amount"], found["currency"]) == (200.0, "EUR")
    assert found["workflow"] == "quote-to-cash"
    assert [e["event_id"] for e in found["events"]] == [f"z-{key}", f"y-{key}", f"a-{key}"]


def test_a_step_before_its_prerequisite_is_a_governance_violation(api: httpx.Client) -> None:
    key = new_key()
    send(
        api,
        *happy_path(key, until=3),
        event(key, "billing.subscription.activated", "stripe", 10),
        event(key, "erp.order.created", "netsuite", 20),
    )
    found = state(api, key, 30)
    assert found["violations"] == [
        {
            "rule": "out_of_order",
            "step": "billing.subscription.activated",
            "before": "erp.order.created",
            "after": None,
        }
    ]


def test_a_credit_posted_without_finance_approval_is_a_violation_and_approval_is_missing(
    api: httpx.Client,
) -> None:
    key = new_key("CASE")
    credit = {"workflow": "support-credit"}
    send(
        api,
        event(key, "support.credit.requested", "zendesk", 0, **credit),
        event(key, "middleware.credit_request.validated", "mulesoft", 5, **credit),
        event(key, "billing.credit.posted", "stripe", 10, **credit),
    )
    found = state(api, key, 20)
    assert {
        "rule": "out_of_order",
        "step": "billing.credit.posted",
        "before": "erp.credit.approved",
        "after": None,
    } in found["violations"]
    assert found["missing_steps"] == ["erp.credit.approved"]
    assert [w["step"] for w in found["waiting_on"]] == ["support.customer.notified"]


def test_a_fail_on_step_fails_the_transaction(api: httpx.Client) -> None:
    key = new_key()
    send(
        api,
        *happy_path(key, until=4),
        event(
            key, "erp.order.rejected", "netsuite", 25, error={"kind": "business", "message": "credit hold"}
        ),
    )
    found = state(api, key, 600)
    assert found["state"] == "failed"
    assert found["failed_at"] == at(25).replace("+00:00", "Z")
    assert found["waiting_on"] == []
    assert found["sla"]["elapsed_seconds"] == 1500.0  # the clock stopped when it failed
    assert "erp.order.rejected" in [s["name"] for s in found["steps"]]  # listed once it happened


def test_a_rejection_after_completion_fails_it_and_a_step_after_a_failure_is_a_violation(
    api: httpx.Client,
) -> None:
    key = new_key()
    rejected = event(key, "erp.order.rejected", "netsuite", 90, status="error", error={"kind": "business"})
    send(api, *happy_path(key), rejected)
    found = state(api, key, 120)
    assert found["state"] == "failed"  # the rejection after completion reverses it
    assert found["completed_at"] == at(70).replace("+00:00", "Z")
    assert found["failed_at"] == at(90).replace("+00:00", "Z")
    assert found["violations"] == []  # nothing ran after the failure

    key = new_key()
    rejected = event(key, "erp.order.rejected", "netsuite", 25, status="error", error={"kind": "business"})
    send(api, *happy_path(key, until=4), rejected, event(key, "billing.subscription.activated", "stripe", 40))
    found = state(api, key, 60)
    assert found["state"] == "failed" and found["completed_at"] is None
    assert found["violations"] == [
        {
            "rule": "after_failure",
            "step": "billing.subscription.activated",
            "before": None,
            "after": "erp.order.rejected",
        }
    ]
    flagged = api.get("/api/transactions", params={"violations": "true", "as_of": at(60), "limit": 500})
    assert key in {item["correlation_id"] for item in flagged.json()["items"]}  # the queue's filter too


def test_a_step_shows_the_system_that_did_it_beside_the_one_expected(api: httpx.Client) -> None:
    key = new_key()
    # The ERP step came from the middleware; billing keeps being tried by a connector, not Stripe.
    send(
        api,
        *happy_path(key, until=3),
        event(key, "erp.order.created", "mulesoft", 20),
        event(
            key,
            "billing.subscription.activated",
            "stripe-connector",
            30,
            status="error",
            error={"kind": "timeout"},
        ),
    )
    found = state(api, key, 40)
    order = next(step for step in found["steps"] if step["name"] == "erp.order.created")
    assert (order["system"], order["expected_system"]) == ("mulesoft", "netsuite")
    validated = next(step for step in found["steps"] if step["name"] == "erp.customer.validated")
    assert (validated["system"], validated["expected_system"]) == ("netsuite", "netsuite")
    [waiting] = found["waiting_on"]
    assert waiting["step"] == "billing.subscription.activated"
    assert (waiting["system"], waiting["expected_system"]) == ("stripe-connector", "stripe")


def test_an_undefined_workflow_is_still_shown_with_its_events(api: httpx.Client) -> None:
    key = new_key("X")
    send(
        api,
        event(key, "legacy.thing.happened", "mainframe", 0, workflow="legacy-batch"),
        event(key, "legacy.thing.filed", "mainframe", 3, workflow="legacy-batch"),
    )
    found = state(api, key, 600)
    assert found["workflow"] == "legacy-batch"
    assert found["state"] == "in_progress"
    assert [step["name"] for step in found["steps"]] == ["legacy.thing.happened", "legacy.thing.filed"]
    assert all(step["expected"] is False for step in found["steps"])


def test_an_unknown_key_is_a_404_with_a_json_error(api: httpx.Client) -> None:
    response = api.get("/api/transactions/NO-SUCH-KEY")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_bad_as_of_is_a_400_naming_it(api: httpx.Client) -> None:
    response = api.get("/api/transactions/ANY", params={"as_of": "yesterday"})
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "as_of"
    naive = api.get("/api/transactions", params={"as_of": "2026-03-02T09:00:00"})
    assert naive.status_code == 400 and naive.json()["problems"][0]["field"] == "as_of"


def test_an_alias_chain_announced_from_the_far_end_first_is_one_transaction(api: httpx.Client) -> None:
    key, invoice, sales_order = new_key(), new_key("INV"), new_key("SO")
    renewal = {"workflow": "subscription-renewal"}
    send(
        api,
        event(
            invoice,
            "middleware.payment.synced",
            "mulesoft",
            30,
            aliases={"erp.sales_order": sales_order},
            **renewal,
        ),
    )
    send(api, event(sales_order, "erp.revenue_schedule.updated", "netsuite", 40, **renewal))
    send(
        api,
        event(key, "billing.invoice.created", "stripe", 10, aliases={"billing.invoice": invoice}, **renewal),
    )
    for lookup in (key, invoice, sales_order):
        found = state(api, lookup, 60)
        assert found["correlation_id"] == key, lookup
        assert found["event_count"] == 3
        assert found["aliases"] == {"billing.invoice": invoice, "erp.sales_order": sales_order}


def test_a_transaction_resolved_by_an_operator_leaves_the_attention_set_until_reopened(
    api: httpx.Client,
) -> None:
    key = new_key()
    later = 14 * 24 * 60  # two weeks after T0: this test's own slice of the overview
    send(api, *[{**item, "timestamp": at(later + n)} for n, item in enumerate(happy_path(key, until=4))])
    as_of, window = at(later + 300), {"since": at(later - 1), "until": at(later + 10)}

    def attention() -> set[str]:
        page = api.get("/api/transactions", params={"attention": "true", "as_of": as_of, **window}).json()
        return {item["correlation_id"] for item in page["items"]}

    def stuck_in_overview() -> int:
        return int(api.get("/api/overview", params={"as_of": as_of, **window}).json()["totals"]["stuck"])

    assert key in attention() and stuck_in_overview() == 1
    resolved = api.post(f"/api/transactions/{key}/resolve", json={"comment": "activated by hand in Stripe"})
    assert resolved.status_code == 201, resolved.text
    now = dt.datetime.now(dt.UTC).isoformat()
    assert key not in {
        item["correlation_id"]
        for item in api.get("/api/transactions", params={"attention": "true", "as_of": now, **window}).json()[
            "items"
        ]
    }
    detail = api.get(f"/api/transactions/{key}", params={"as_of": now}).json()
    assert detail["state"] == "stuck" and detail["resolved"] is True  # the facts stay; the alarm goes
    overview = api.get("/api/overview", params={"as_of": now, **window}).json()["totals"]
    assert (overview["stuck"], overview["resolved"]) == (0, 1)
    assert (
        api.post(f"/api/transactions/{key}/reopen", json={"comment": "still not active"}).status_code == 201
    )
    assert key in {
        item["correlation_id"]
        for item in api.get("/api/transactions", params={"attention": "true", **window}).json()["items"]
    }
