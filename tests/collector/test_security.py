"""API keys, tenants, roles, rate limits and redaction, against a real collector process."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import ROOT, CollectorProcess
from tests.support.polling import eventually
from threadline.collector.app import create_app
from threadline.collector.auth import load_keys
from threadline.collector.config import CollectorSettings

ACME_INGEST, ACME_READ, GLOBEX_ADMIN, SLOW = "tl_acme_ingest", "tl_acme_read", "tl_globex_admin", "tl_slow"
BULK = "tl_bulk"  # 50 events per second: a burst of 500
ACME_ADMIN, ACME_ACT, PLATFORM = "tl_acme_admin", "tl_acme_act", "tl_platform"
READ_DIGEST = hashlib.sha256(ACME_READ.encode()).hexdigest()  # a key kept out of the file
KEYS = f"""
keys:
  - {{name: acme-integrations, key: {ACME_INGEST}, tenant: acme, roles: [ingest]}}
  - {{name: acme-dashboard, sha256: {READ_DIGEST}, tenant: acme, roles: [read]}}
  - {{name: acme-operations, key: {ACME_ACT}, tenant: acme, roles: [act]}}
  - {{name: acme-admin, key: {ACME_ADMIN}, tenant: acme, roles: [admin]}}
  - {{name: globex, key: {GLOBEX_ADMIN}, tenant: globex, roles: [admin]}}
  - {{name: throttled, key: {SLOW}, tenant: acme, roles: [ingest], events_per_second: 5}}
  - {{name: bulk, key: {BULK}, tenant: acme, roles: [ingest], events_per_second: 50}}
  - {{name: prometheus, key: {PLATFORM}, roles: [platform]}}
"""
TRACE_ID = "5b8efff798038103d269b633813fc60c"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def event(key: str, step: str = "crm.opportunity.won", **fields: Any) -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": "quote-to-cash",
        "step": step,
        "system": "salesforce",
        "timestamp": dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).isoformat(),
        **fields,
    }


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    folder = tmp_path_factory.mktemp("security")
    keys = folder / "keys.yaml"
    keys.write_text(KEYS)
    running = CollectorProcess(
        store_dir=folder / "store",
        env={"THREADLINE_API_KEYS": str(keys), "THREADLINE_REDACT_KEYS": "contract_holder"},
        isolated=True,
    )
    yield running.start()
    running.stop()


@pytest.fixture(scope="module")
def http(collector: CollectorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        acme = [
            event(
                "OPP-1",
                aliases={"erp.sales_order": "SO-1"},
                trace_id=TRACE_ID,
                span_id="051581bf3cb55c13",
                attributes={"customer_email": "jane@example.com", "contract_holder": "Jane Doe"},
            )
        ]
        assert (
            client.post("/v1/events", json={"events": acme}, headers=bearer(ACME_INGEST)).status_code == 200
        )
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/events"),
        ("POST", "/v1/traces"),
        ("POST", "/v1/logs"),
        ("POST", "/v1/webhooks/stripe"),
        ("POST", "/v1/cloudevents"),
        ("GET", "/api/transactions"),
        ("GET", "/api/overview"),
        ("GET", "/api/transactions/OPP-1"),
        ("GET", "/metrics"),
        ("POST", "/api/workflows/reload"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/openapi.json"),
    ],
)
def test_every_endpoint_needs_a_key(http: httpx.Client, method: str, path: str) -> None:
    for headers in ({}, bearer("tl_unknown"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = http.request(method, path, headers=headers, json={"events": [event("X")]})
        assert response.status_code == 401, (path, headers)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_probes_stay_open(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200


def test_roles_limit_what_a_key_may_do(http: httpx.Client) -> None:
    assert http.get("/api/transactions", headers=bearer(ACME_INGEST)).status_code == 403
    denied = http.post("/v1/events", json={"events": [event("X")]}, headers=bearer(ACME_READ))
    assert denied.status_code == 403 and "ingest" in denied.json()["message"]
    assert http.post("/api/workflows/reload", headers=bearer(ACME_READ)).status_code == 403
    assert http.get("/metrics", headers=bearer(GLOBEX_ADMIN)).status_code == 200


def test_a_key_tells_who_it_is_and_what_it_may_do(http: httpx.Client) -> None:
    admin = http.get("/api/whoami", headers=bearer(ACME_ADMIN)).json()
    assert admin == {"name": "acme-admin", "tenant": "acme", "roles": ["act", "admin", "ingest", "read"]}
    assert http.get("/api/whoami", headers=bearer(ACME_READ)).json()["roles"] == ["read"]
    assert http.get("/api/whoami", headers=bearer(PLATFORM)).json() == {
        "name": "prometheus",
        "tenant": "",
        "roles": ["platform"],
    }


def state_changing_routes() -> list[tuple[str, str]]:
    """Every route of the collector that is not a read, each key or id in its path filled in."""
    paths = create_app(CollectorSettings()).openapi()["paths"]
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "OPP-1", path))
        for path, operations in paths.items()
        for method in operations
        if method not in {"get", "head", "options"}
    )


def test_a_read_key_changes_nothing_anywhere(http: httpx.Client) -> None:
    routes = state_changing_routes()
    assert ("POST", "/api/transactions/OPP-1/resolve") in routes and ("POST", "/api/exceptions/ack") in routes
    for method, path in routes:
        body = {"comment": "as a reader", "operator": "nobody", "kind": "transient", "system": "salesforce"}
        response = http.request(method, path, json=body, headers=bearer(ACME_READ))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "forbidden"
    assert http.get("/api/audit", headers=bearer(ACME_READ)).json()["items"] == []


def test_acting_is_its_own_role(http: httpx.Client) -> None:
    acted = http.post(
        "/api/transactions/OPP-1/resolve",
        json={"comment": "booked by hand", "operator": "Sam"},
        headers=bearer(ACME_ACT),
    )
    assert acted.status_code == 201, acted.text
    assert http.get("/api/transactions/OPP-1", headers=bearer(ACME_ACT)).status_code == 403  # acts, reads not
    trail = http.get("/api/audit", headers=bearer(ACME_READ)).json()["items"]
    actions = [(entry["action"], entry["actor"], entry["operator"]) for entry in trail]
    assert actions == [("resolve", "acme-operations", "Sam")]
    undo = {"comment": "undo", "operator": "Sam"}
    reopened = http.post("/api/transactions/OPP-1/reopen", json=undo, headers=bearer(ACME_ADMIN))
    assert reopened.status_code == 201, reopened.text  # a tenant's admin acts too


def test_reloading_the_shared_definitions_is_the_platforms(http: httpx.Client) -> None:
    for tenant_key in (ACME_ADMIN, GLOBEX_ADMIN):
        refused = http.post("/api/workflows/reload", headers=bearer(tenant_key))
        assert refused.status_code == 403 and "platform" in refused.json()["message"]
    reloaded = http.post("/api/workflows/reload", headers=bearer(PLATFORM))
    assert reloaded.status_code == 200 and "quote-to-cash" in {w["name"] for w in reloaded.json()}
    assert http.get("/api/transactions", headers=bearer(PLATFORM)).status_code == 403  # no tenant's data


def test_a_tenant_reads_its_own_transactions(http: httpx.Client) -> None:
    found = http.get("/api/transactions/SO-1", headers=bearer(ACME_READ))
    assert found.status_code == 200 and found.json()["correlation_id"] == "OPP-1"
    assert (
        http.get(f"/api/traces/{TRACE_ID}", headers=bearer(ACME_READ)).json()["events"][0]["correlation_id"]
        == "OPP-1"
    )


def test_another_tenant_cannot_see_its_key_alias_trace_or_counts(http: httpx.Client) -> None:
    globex = bearer(GLOBEX_ADMIN)
    for path in ("/api/transactions/OPP-1", "/api/transactions/SO-1", f"/api/traces/{TRACE_ID}"):
        assert http.get(path, headers=globex).status_code == 404, path
    assert http.get("/api/transactions", headers=globex).json()["total"] == 0
    assert http.get("/api/overview", headers=globex).json()["totals"]["transactions"] == 0
    assert http.get("/api/systems", headers=globex).json()["systems"] == []
    assert http.get("/api/workflows/quote-to-cash/map", headers=globex).json()["transactions"] == 0


def test_the_same_key_in_two_tenants_is_two_transactions(http: httpx.Client) -> None:
    mine = [event("OPP-1", "erp.customer.validated", system="netsuite")]
    assert (
        http.post("/v1/events", json={"events": mine}, headers=bearer(GLOBEX_ADMIN)).json()["accepted"] == 1
    )
    globex = http.get("/api/transactions/OPP-1", headers=bearer(GLOBEX_ADMIN)).json()
    acme = http.get("/api/transactions/OPP-1", headers=bearer(ACME_READ)).json()
    assert [e["step"] for e in globex["events"]] == ["erp.customer.validated"]
    assert [e["step"] for e in acme["events"]] == ["crm.opportunity.won"]
    assert globex["aliases"] == {}


def test_a_key_over_its_rate_is_told_to_retry_later(http: httpx.Client) -> None:
    burst = [event(f"RATE-{n}") for n in range(50)]  # ten seconds' worth at 5 events/s
    assert http.post("/v1/events", json={"events": burst}, headers=bearer(SLOW)).status_code == 200
    # Ten more: two seconds' worth, more than the bucket refills while the first batch is stored.
    more = [event("RATE-X", event_id=f"rate-x-{n}") for n in range(10)]
    refused = http.post("/v1/events", json={"events": more}, headers=bearer(SLOW))
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert http.get("/api/transactions/RATE-X", headers=bearer(ACME_READ)).status_code == 404  # not stored


def test_a_batch_larger_than_the_burst_costs_its_size_and_the_next_request_waits_it_out(
    http: httpx.Client,
) -> None:
    # A full bucket holds 500; a batch of 600 is admitted from it and leaves a debt of 100 events,
    # two seconds at 50 events/s, which the next request must wait out.
    big = [event(f"DEBT-{n}") for n in range(600)]
    assert http.post("/v1/events", json={"events": big}, headers=bearer(BULK)).status_code == 200

    refused = http.post("/v1/events", json={"events": [event("DEBT-X")]}, headers=bearer(BULK))

    assert refused.status_code == 429, refused.text
    assert "500" in refused.json()["message"]  # the burst, named
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 3
    time.sleep(wait)  # Retry-After is truthful: waiting that long is enough
    again = http.post("/v1/events", json={"events": [event("DEBT-X")]}, headers=bearer(BULK))
    assert again.status_code == 200, again.text


def test_the_api_description_is_open_to_a_key_of_any_role(http: httpx.Client) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert http.get(path, headers=bearer(ACME_INGEST)).status_code == 200, path
    assert "/v1/events" in http.get("/openapi.json", headers=bearer(ACME_READ)).json()["paths"]


def test_readyz_says_ready_and_nothing_of_the_store(http: httpx.Client, collector: CollectorProcess) -> None:
    ready = http.get("/readyz")

    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert str(collector.store_dir) not in ready.text and "chdb" not in ready.text


def test_sensitive_attributes_are_stored_hashed_whoever_sent_them(http: httpx.Client) -> None:
    stored = http.get("/api/transactions/OPP-1", headers=bearer(ACME_READ)).json()["events"][0]["attributes"]
    assert stored["customer_email"].startswith("redacted:")  # built-in key
    assert stored["contract_holder"].startswith("redacted:")  # THREADLINE_REDACT_KEYS
    assert "jane" not in str(stored).lower()


def test_a_bad_keys_file_stops_the_collector(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - {key: abc, tenant: acme, roles: [superuser]}\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline",
            "collector",
            "--api-keys",
            str(keys),
            "--store",
            f"chdb://{tmp_path / 'store'}",
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 2
    assert "roles must be a list of act, admin, ingest, platform, read" in run.stderr


def test_the_example_keys_load_and_prometheus_scrapes_with_a_platform_key() -> None:
    keys = load_keys(ROOT / "deploy" / "keys.example.yaml")
    platform = keys.authenticate("Bearer change-me-platform")
    assert platform.may("platform") and not platform.may("read") and platform.tenant == ""
    dashboard = keys.authenticate("Bearer change-me-read")
    assert dashboard.may("read") and not dashboard.may("act")  # acting from the dashboard is opt-in
    assert "threadline-platform-key" in (ROOT / "deploy" / "prometheus" / "threadline-rules.yml").read_text()


def test_without_keys_the_collector_listens_on_loopback_only_and_says_so(tmp_path: Path) -> None:
    collector = CollectorProcess(
        store_dir=tmp_path / "store", isolated=True, env={"THREADLINE_HOST": "0.0.0.0"}
    )
    try:
        collector.start()
        assert "listening on 127.0.0.1 only" in collector.log()
        assert httpx.get(collector.url + "/api/transactions").status_code == 200  # trusted, no key needed
    finally:
        collector.stop()


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def evaluating(tmp_path: Path) -> Iterator[httpx.Client]:
    """A collector with the same keys whose tenants' gauges on /metrics are refreshed each second."""
    keys = tmp_path / "keys.yaml"
    keys.write_text(KEYS)
    env = {"THREADLINE_API_KEYS": str(keys), "THREADLINE_ALERT_INTERVAL": "1"}
    running = CollectorProcess(store_dir=tmp_path / "store", env=env, isolated=True).start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as client:
            yield client
    finally:
        running.stop()


def test_a_tenants_admin_sees_only_its_own_tenant_on_metrics(evaluating: httpx.Client) -> None:
    http = evaluating
    for key, events in ((ACME_INGEST, [event("OPP-1")]), (GLOBEX_ADMIN, [event("GLX-1")])):
        assert http.post("/v1/events", json={"events": events}, headers=bearer(key)).status_code == 200

    def both_tenants() -> str | None:
        text = http.get("/metrics", headers=bearer(PLATFORM)).text
        gauges = [line for line in series(text) if line.startswith("threadline_transactions{")]
        seen = all(any(f'tenant="{tenant}"' in line for line in gauges) for tenant in ("acme", "globex"))
        return text if seen else None

    everything = series(eventually(both_tenants, what="both tenants' gauges on the platform's /metrics"))
    assert any(line.startswith("threadline_events_received_total") for line in everything)
    for admin, mine, other in ((ACME_ADMIN, "acme", "globex"), (GLOBEX_ADMIN, "globex", "acme")):
        response = http.get("/metrics", headers=bearer(admin))
        assert response.status_code == 200
        lines = series(response.text)
        assert any(line.startswith("threadline_transactions{") for line in lines), admin
        assert all(f'tenant="{mine}"' in line for line in lines), [line for line in lines if mine not in line]
        assert other not in response.text
    assert http.get("/metrics", headers=bearer(ACME_READ)).status_code == 403
