"""Request retry: actions declared in the workflows file post to the owning integration, a real
HTTP server here, and what it answered is in the audit trail and on the transaction."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.otlp_receiver import free_port
from tests.support.webhook_receiver import WebhookReceiver
from threadline.collector.ingest.webhooks import verify_stripe

KEYS = """
keys:
  - {name: integrations, key: tl_ingest, tenant: acme, roles: [ingest]}
  - {name: ops-dashboard, key: tl_ops, tenant: acme, roles: [read, act]}
  - {name: viewers, key: tl_view, tenant: acme, roles: [read]}
"""
WORKFLOWS = """\
workflows:
  order:
    stuck_after: 10m
    steps:
      - {name: order.received, system: crm}
      - {name: order.booked, system: erp}
      - {name: order.billed, system: billing}
actions:
  - {name: rebook, kind: retry, system: erp, url_env: TL_TEST_ERP_RETRY_URL,
     secret_env: TL_TEST_ERP_RETRY_SECRET, timeout: 3s}
  - {name: rebill, kind: retry, workflow: order, step: order.billed, url_env: TL_TEST_BILLING_RETRY_URL}
  - {name: unplugged, kind: retry, system: erp, url_env: TL_TEST_UNSET_RETRY_URL}
"""
SECRET = "whsec_retry_test"
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def integration() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(status=202).start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def collector(
    tmp_path_factory: pytest.TempPathFactory, integration: WebhookReceiver
) -> Iterator[CollectorProcess]:
    folder = tmp_path_factory.mktemp("retries")
    (folder / "keys.yaml").write_text(KEYS)
    (folder / "workflows.yaml").write_text(WORKFLOWS)
    running = CollectorProcess(
        store_dir=folder / "store",
        workflows=folder / "workflows.yaml",
        env={
            "THREADLINE_API_KEYS": str(folder / "keys.yaml"),
            "THREADLINE_SHARED_READ_SECONDS": "0",
            "TL_TEST_ERP_RETRY_URL": integration.url("/erp/retry"),
            "TL_TEST_ERP_RETRY_SECRET": SECRET,
            "TL_TEST_BILLING_RETRY_URL": f"http://127.0.0.1:{free_port()}/nobody-listens",
        },
        isolated=True,
    ).start()
    yield running
    running.stop()


def client(collector: CollectorProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def ops(collector: CollectorProcess) -> Iterator[httpx.Client]:
    with client(collector, "tl_ops") as ops:
        yield ops


def send(collector: CollectorProcess, *events: dict[str, Any]) -> None:
    with client(collector, "tl_ingest") as ingest:
        response = ingest.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.text


def event(key: str, step: str, system: str, minutes: float, **fields: Any) -> dict[str, Any]:
    timestamp = (T0 + dt.timedelta(minutes=minutes)).isoformat()
    return {
        "correlation_id": key,
        "workflow": "order",
        "step": step,
        "system": system,
        "timestamp": timestamp,
        **fields,
    }


def stuck_at_booking(collector: CollectorProcess) -> str:
    """A transaction stuck waiting on order.booked (erp) since March, known also by an alias."""
    key = f"ORD-{uuid.uuid4().hex[:8]}"
    send(collector, event(key, "order.received", "crm", 0, aliases={"erp.order": f"SO-{key}"}))
    return key


def actions_of(ops: httpx.Client, key: str) -> dict[str, dict[str, Any]]:
    response = ops.get(f"/api/transactions/{quote(key, safe='')}")
    assert response.status_code == 200, response.text
    return {action["name"]: action for action in response.json()["actions"]}


def test_request_retry_posts_the_keys_step_and_operator_signed_and_the_answer_is_audited(
    collector: CollectorProcess, integration: WebhookReceiver, ops: httpx.Client
) -> None:
    key = stuck_at_booking(collector)
    offered = actions_of(ops, key)
    assert set(offered) == {"rebook", "unplugged"}  # erp's actions; billing's step is not due
    assert offered["rebook"]["configured"] and offered["rebook"]["last"] is None
    assert (offered["rebook"]["step"], offered["rebook"]["system"]) == ("order.booked", "erp")

    response = ops.post(
        f"/api/transactions/SO-{key}/actions/rebook",  # by its alias
        json={"comment": "VAT id fixed in the ERP", "operator": "dana@acme.example"},
    )

    assert response.status_code == 201, response.text
    entry = response.json()
    assert (entry["action"], entry["request"], entry["step"], entry["system"]) == (
        "retry",
        "rebook",
        "order.booked",
        "erp",
    )
    assert (entry["operator"], entry["actor"], entry["comment"]) == (
        "dana@acme.example",
        "ops-dashboard",
        "VAT id fixed in the ERP",
    )
    outcome = entry["outcome"]
    assert (outcome["delivered"], outcome["status_code"], outcome["body"], outcome["error"]) == (
        True,
        202,
        "ok",
        None,
    )
    [sent] = [r for r in integration.requests if r.body.get("transaction_id") == key]
    assert sent.path == "/erp/retry"
    assert sent.body["keys"] == {"correlation_id": key, "erp.order": f"SO-{key}"}
    assert (sent.body["correlation_id"], sent.body["step"], sent.body["system"]) == (
        f"SO-{key}",
        "order.booked",
        "erp",
    )
    assert (sent.body["operator"], sent.body["comment"], sent.body["action"]) == (
        "dana@acme.example",
        "VAT id fixed in the ERP",
        "rebook",
    )
    assert dt.datetime.fromisoformat(sent.body["requested_at"]) <= dt.datetime.fromisoformat(entry["at"])
    assert sent.headers["idempotency-key"] == entry["id"]
    verify_stripe(sent.headers["threadline-signature"], sent.raw, SECRET, time.time())  # raises if wrong
    assert actions_of(ops, key)["rebook"]["last"] == entry
    trail = ops.get("/api/audit", params={"transaction": key, "action": "retry"}).json()["items"]
    assert trail == [entry]


def test_an_integration_that_refuses_or_does_not_answer_is_recorded_as_not_delivered(
    collector: CollectorProcess, integration: WebhookReceiver, ops: httpx.Client
) -> None:
    key = stuck_at_booking(collector)
    send(
        collector,
        event(key, "order.booked", "erp", 5),
        event(key, "order.billed", "billing", 9, status="error"),
    )
    booked = ops.post(f"/api/transactions/{key}/actions/rebook", json={"comment": "again"})
    unanswered = ops.post(f"/api/transactions/{key}/actions/rebill", json={"comment": "billing, please"})

    # order.booked is done now: rebook no longer applies, rebill (billing failed) does
    assert booked.status_code == 404 and "available: rebill" in booked.json()["message"]
    assert unanswered.status_code == 201, unanswered.text
    outcome = unanswered.json()["outcome"]
    assert outcome["delivered"] is False and outcome["status_code"] is None
    assert outcome["error"].startswith("ConnectError") and "nobody-listens" not in outcome["error"]
    assert actions_of(ops, key)["rebill"]["last"]["outcome"] == outcome

    other = stuck_at_booking(collector)
    integration.status = 503
    try:
        failed = ops.post(f"/api/transactions/{other}/actions/rebook", json={"comment": "try"})
    finally:
        integration.status = 202
    assert failed.status_code == 201
    assert failed.json()["outcome"] | {"duration_ms": 0} == {
        "delivered": False,
        "status_code": 503,
        "body": "ok",
        "error": "HTTP 503",
        "duration_ms": 0,
    }


def test_an_action_not_configured_an_unknown_one_and_a_reader_are_refused(
    collector: CollectorProcess, integration: WebhookReceiver, ops: httpx.Client
) -> None:
    key = stuck_at_booking(collector)
    before = len(integration.requests)

    unplugged = ops.post(f"/api/transactions/{key}/actions/unplugged", json={"comment": "x"})
    unknown = ops.post(f"/api/transactions/{key}/actions/reboot", json={"comment": "x"})
    nobody = ops.post("/api/transactions/NO-SUCH-KEY/actions/rebook", json={"comment": "x"})
    no_comment = ops.post(f"/api/transactions/{key}/actions/rebook", json={})
    with client(collector, "tl_view") as viewer:
        reader = viewer.post(f"/api/transactions/{key}/actions/rebook", json={"comment": "x"})

    assert unplugged.status_code == 409 and unplugged.json()["error"] == "not_configured"
    assert "$TL_TEST_UNSET_RETRY_URL is not set" in unplugged.json()["message"]
    offered = actions_of(ops, key)["unplugged"]
    assert offered["configured"] is False and "TL_TEST_UNSET_RETRY_URL" in offered["reason"]
    assert unknown.status_code == 404 and "available: rebook, unplugged" in unknown.json()["message"]
    assert nobody.status_code == 404
    assert no_comment.status_code == 400 and no_comment.json()["problems"][0]["field"] == "comment"
    assert reader.status_code == 403
    assert len(integration.requests) == before
    assert ops.get("/api/audit", params={"transaction": key}).json()["items"] == []
