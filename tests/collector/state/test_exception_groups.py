"""Exceptions and the operators' audit trail, against a real collector process with API keys.

Each test sends its own transactions with systems of its own (``erp-<id>``), so tests sharing the
collector never see each other's exception groups, whatever order they run in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.collector_process import CollectorProcess

KEYS = """
keys:
  - {name: integrations, key: tl_ingest, tenant: acme, roles: [ingest]}
  - {name: ops-dashboard, key: tl_read, tenant: acme, roles: [read, act]}
  - {name: globex-admin, key: tl_globex, tenant: globex, roles: [admin]}
"""
WORKFLOWS = """\
workflows:
  order:
    sla: 1h
    steps:
      - {name: order.received, system: crm}
      - {name: order.booked, system: erp}
      - {name: order.billed, system: billing}
  refund:
    fail_on: [refund.refused]
    steps:
      - {name: refund.requested, system: support}
      - {name: refund.paid, system: billing}
      - {name: refund.refused, system: billing, after: [refund.requested]}
"""
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    folder = tmp_path_factory.mktemp("exceptions")
    (folder / "keys.yaml").write_text(KEYS)
    (folder / "workflows.yaml").write_text(WORKFLOWS)
    running = CollectorProcess(
        store_dir=folder / "store",
        workflows=folder / "workflows.yaml",
        # Each test reads right after it writes: answers shared for 30 s (a slow call on a busy
        # machine is) would show the state before the write (test_shared_reads covers sharing).
        env={"THREADLINE_API_KEYS": str(folder / "keys.yaml"), "THREADLINE_SHARED_READ_SECONDS": "0"},
        isolated=True,
    ).start()
    yield running
    running.stop()


@pytest.fixture
def ops(collector: CollectorProcess) -> Iterator[httpx.Client]:
    """The operators' dashboard key (roles read and act, tenant acme)."""
    with httpx.Client(base_url=collector.url, headers=bearer("tl_read"), timeout=30) as client:
        yield client


@pytest.fixture
def ingest(collector: CollectorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.url, headers=bearer("tl_ingest"), timeout=30) as client:
        yield client


def event(key: str, step: str, system: str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {
        "correlation_id": key,
        "workflow": fields.pop("workflow", "order"),
        "step": step,
        "system": system,
        "timestamp": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        **fields,
    }


def error(kind: str, message: str = "") -> dict[str, str]:
    return {"kind": kind, "message": message}


def send(ingest: httpx.Client, *events: dict[str, Any]) -> None:
    response = ingest.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 200, response.text


def scenario(ingest: httpx.Client) -> tuple[str, str, str]:
    """Exceptions of every sort in systems of this test's own; returns (id, erp system, billing system)."""
    run = uuid.uuid4().hex[:8]
    erp, billing = f"erp-{run}", f"billing-{run}"
    send(
        ingest,
        # two open validation errors in the ERP, one of them retried twice
        event(f"A-{run}", "order.received", "crm", 0, aliases={"erp.order": f"SO-{run}"}),
        event(
            f"A-{run}", "order.booked", erp, 5, status="error", error=error("validation", "VAT id missing")
        ),
        event(f"B-{run}", "order.received", "crm", 0),
        event(
            f"B-{run}", "order.booked", erp, 5, status="error", error=error("validation", "VAT id missing")
        ),
        event(
            f"B-{run}", "order.booked", erp, 9, status="error", error=error("validation", "VAT id invalid")
        ),
        # recovered: a transient error, then the step succeeded
        event(f"C-{run}", "order.received", "crm", 0),
        event(f"C-{run}", "order.booked", erp, 5, status="error", error=error("transient", "502")),
        event(f"C-{run}", "order.booked", erp, 6),
        # completed despite an error on an extra step: not open
        event(f"D-{run}", "order.received", "crm", 0),
        event(f"D-{run}", "order.booked", erp, 1),
        event(f"D-{run}", "order.billed", billing, 2),
        event(f"D-{run}", "order.notified", billing, 3, status="error", error=error("timeout")),
        # failed: refused by billing
        event(f"E-{run}", "refund.requested", "support", 0, workflow="refund"),
        event(
            f"E-{run}",
            "refund.refused",
            billing,
            4,
            workflow="refund",
            status="error",
            error=error("business", "outside the refund window"),
        ),
        # an error without a kind (the default kind, transient), and a retry announced with its error kind
        event(f"F-{run}", "order.received", "crm", 0),
        event(f"F-{run}", "order.booked", erp, 5, status="error"),
        event(f"G-{run}", "order.received", "crm", 0),
        event(
            f"G-{run}", "order.booked", erp, 5, status="retrying", attempt=2, error=error("timeout", "slow")
        ),
    )
    # recovered across keys: the error stored under the ERP's key, the success under the order's,
    # which then announces the ERP's key as its alias (one transaction, two stored parts)
    send(ingest, event(f"SO-L-{run}", "order.booked", erp, 5, status="error", error=error("validation")))
    send(
        ingest,
        event(f"L-{run}", "order.received", "crm", 0),
        event(f"L-{run}", "order.booked", erp, 6, aliases={"erp.order": f"SO-L-{run}"}),
    )
    return run, erp, billing


def exceptions(ops: httpx.Client, **params: str) -> dict[str, Any]:
    response = ops.get("/api/exceptions", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def groups_of(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(group["kind"], group["system"]): group for group in report["groups"]}


def test_open_exceptions_are_grouped_by_kind_and_system_with_counts_and_transactions(
    ops: httpx.Client, ingest: httpx.Client
) -> None:
    run, erp, billing = scenario(ingest)

    erp_groups = groups_of(exceptions(ops, system=erp))
    billing_groups = groups_of(exceptions(ops, system=billing))

    assert set(erp_groups) == {("validation", erp), ("transient", erp), ("timeout", erp)}
    validation = erp_groups["validation", erp]
    assert (validation["transactions"], validation["exceptions"], validation["acknowledged"]) == (2, 2, 0)
    assert validation["workflows"] == {"order": 2}
    assert validation["acknowledgement"] is None
    items = {item["correlation_id"]: item for item in validation["items"]}
    assert set(items) == {f"A-{run}", f"B-{run}"}
    assert items[f"B-{run}"]["errors"] == 2 and items[f"B-{run}"]["message"] == "VAT id invalid"
    assert items[f"B-{run}"]["step"] == "order.booked" and items[f"B-{run}"]["workflow"] == "order"
    assert [item["correlation_id"] for item in erp_groups["timeout", erp]["items"]] == [f"G-{run}"]
    assert [item["correlation_id"] for item in erp_groups["transient", erp]["items"]] == [f"F-{run}"]
    assert set(billing_groups) == {("business", billing)}  # D completed, so its timeout is not open
    [refused] = billing_groups["business", billing]["items"]
    assert (refused["correlation_id"], refused["state"]) == (f"E-{run}", "failed")


def test_exceptions_filter_by_kind_system_and_workflow(ops: httpx.Client, ingest: httpx.Client) -> None:
    _, erp, billing = scenario(ingest)

    assert set(groups_of(exceptions(ops, system=erp, kind="validation"))) == {("validation", erp)}
    refunds = exceptions(ops, workflow="refund", system=billing)
    assert (refunds["transactions"], refunds["exceptions"]) == (1, 1)
    assert exceptions(ops, system=erp, workflow="refund")["groups"] == []
    assert exceptions(ops, system=erp, limit="0")["groups"][0]["items"] == []
    bad = ops.get("/api/exceptions", params={"kind": "cosmic-ray"})
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "kind"


def test_acknowledging_a_group_is_audited_and_covers_only_what_had_arrived(
    ops: httpx.Client, ingest: httpx.Client
) -> None:
    run, erp, _ = scenario(ingest)
    before = dt.datetime.now(dt.UTC)

    response = ops.post(
        "/api/exceptions/ack",
        json={
            "kind": "validation",
            "system": erp,
            "comment": "VAT fix deploying at 14:00",
            "operator": "jane",
        },
    )

    assert response.status_code == 201, response.text
    result = response.json()
    entry = result["entry"]
    assert result["covered"] == 2
    assert (entry["action"], entry["actor"], entry["operator"]) == ("acknowledge", "ops-dashboard", "jane")
    assert (entry["kind"], entry["system"], entry["workflow"]) == ("validation", erp, None)
    assert entry["comment"] == "VAT fix deploying at 14:00"
    assert before <= dt.datetime.fromisoformat(entry["at"]) <= dt.datetime.now(dt.UTC)
    group = groups_of(exceptions(ops, system=erp))["validation", erp]
    assert group["acknowledged"] == 2 and group["acknowledgement"] == entry
    assert all(item["acknowledged"] for item in group["items"])

    send(
        ingest,
        event(f"H-{run}", "order.received", "crm", 0),
        event(f"H-{run}", "order.booked", erp, 5, status="error", error=error("validation", "new one")),
    )

    group = groups_of(exceptions(ops, system=erp))["validation", erp]
    assert (group["exceptions"], group["acknowledged"]) == (3, 2)
    assert {item["correlation_id"]: item["acknowledged"] for item in group["items"]}[f"H-{run}"] is False
    audit = ops.get("/api/audit", params={"action": "acknowledge"}).json()["items"]
    assert entry in audit


def test_acknowledging_needs_a_comment_a_known_kind_and_a_key_that_may_read(
    collector: CollectorProcess, ops: httpx.Client, ingest: httpx.Client
) -> None:
    body = {"kind": "validation", "system": "erp", "comment": "on it"}

    empty = ops.post("/api/exceptions/ack", json={**body, "comment": "  "})
    unknown = ops.post("/api/exceptions/ack", json={**body, "kind": "cosmic-ray"})
    extra = ops.post("/api/exceptions/ack", json={**body, "who": "me"})

    assert empty.status_code == 400 and empty.json()["problems"][0]["field"] == "comment"
    assert unknown.status_code == 400 and unknown.json()["problems"][0]["field"] == "kind"
    assert extra.status_code == 400
    assert ingest.post("/api/exceptions/ack", json=body).status_code == 403
    assert httpx.post(collector.url + "/api/exceptions/ack", json=body).status_code == 401
    assert ingest.post("/api/transactions/X/resolve", json={"comment": "x"}).status_code == 403


def test_resolving_a_transaction_is_audited_takes_it_out_of_the_exceptions_and_reopening_brings_it_back(
    ops: httpx.Client, ingest: httpx.Client
) -> None:
    run, erp, _ = scenario(ingest)

    resolved = ops.post(
        f"/api/transactions/SO-{run}/resolve",  # by an alias
        json={"comment": "booked by hand in the ERP, ticket OPS-77", "operator": "sam"},
    )

    assert resolved.status_code == 201, resolved.text
    entry = resolved.json()
    assert (entry["action"], entry["actor"], entry["operator"]) == ("resolve", "ops-dashboard", "sam")
    assert (
        entry["correlation_id"] == f"SO-{run}"
        and entry["comment"] == "booked by hand in the ERP, ticket OPS-77"
    )
    items = groups_of(exceptions(ops, system=erp))["validation", erp]["items"]
    assert [item["correlation_id"] for item in items] == [f"B-{run}"]
    again = ops.post(f"/api/transactions/A-{run}/resolve", json={"comment": "twice"})
    assert again.status_code == 409 and "already resolved by ops-dashboard" in again.json()["message"]

    reopened = ops.post(f"/api/transactions/A-{run}/reopen", json={"comment": "the ERP rejected it again"})

    assert reopened.status_code == 201 and reopened.json()["action"] == "reopen"
    items = groups_of(exceptions(ops, system=erp))["validation", erp]["items"]
    assert {item["correlation_id"] for item in items} == {f"A-{run}", f"B-{run}"}
    assert ops.post(f"/api/transactions/A-{run}/reopen", json={"comment": "x"}).status_code == 409
    trail = ops.get("/api/audit", params={"transaction": f"SO-{run}"}).json()["items"]
    assert [(e["action"], e["comment"]) for e in trail] == [
        ("reopen", "the ERP rejected it again"),
        ("resolve", "booked by hand in the ERP, ticket OPS-77"),
    ]
    # as of a moment between the resolution and the reopening, it was out; before it, in
    resolved_at = dt.datetime.fromisoformat(entry["at"])
    between = resolved_at + (dt.datetime.fromisoformat(reopened.json()["at"]) - resolved_at) / 2

    def open_then(moment: dt.datetime) -> set[str]:
        group = groups_of(exceptions(ops, system=erp, as_of=moment.isoformat()))["validation", erp]
        return {item["correlation_id"] for item in group["items"]}

    assert open_then(between) == {f"B-{run}"}
    assert open_then(resolved_at - dt.timedelta(milliseconds=1)) == {f"A-{run}", f"B-{run}"}


def test_keys_holding_slashes_and_action_words_are_resolved_and_reopened_when_percent_encoded(
    ops: httpx.Client, ingest: httpx.Client
) -> None:
    run = uuid.uuid4().hex[:8]
    order, returned = f"SO/{run}/00042", f"RMA/{run}/resolve"  # the second ends like the action
    send(
        ingest,
        event(order, "order.received", "crm", 0, aliases={"erp.invoice": f"INV #{run}/7"}),
        event(returned, "order.received", "crm", 0),
    )

    def act(key: str, action: str) -> httpx.Response:
        return ops.post(f"/api/transactions/{quote(key, safe='')}/{action}", json={"comment": action})

    for key, by in ((order, f"INV #{run}/7"), (returned, returned)):
        resolved = act(by, "resolve")
        assert resolved.status_code == 201, (by, resolved.text)
        assert resolved.json()["correlation_id"] == by
        assert act(key, "resolve").status_code == 409  # the same transaction, already resolved
        assert act(key, "reopen").status_code == 201
        trail = ops.get("/api/audit", params={"transaction": key}).json()["items"]
        assert [e["action"] for e in trail] == ["reopen", "resolve"], key
    assert act(f"RMA/{run}", "resolve").status_code == 404  # not the key that ends in "/resolve"


def test_resolving_an_unknown_key_is_a_404_and_needs_a_comment(ops: httpx.Client) -> None:
    missing = ops.post("/api/transactions/NO-SUCH-KEY/resolve", json={"comment": "gone"})
    no_comment = ops.post("/api/transactions/NO-SUCH-KEY/resolve", json={})

    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert no_comment.status_code == 400 and no_comment.json()["problems"][0]["field"] == "comment"


def test_the_audit_trail_pages_newest_first_and_other_tenants_see_none_of_it(
    collector: CollectorProcess, ops: httpx.Client, ingest: httpx.Client
) -> None:
    run, erp, _ = scenario(ingest)
    for n in range(3):
        ack = {"kind": "transient", "system": erp, "comment": f"note {n}"}
        assert ops.post("/api/exceptions/ack", json=ack).status_code == 201

    first = ops.get("/api/audit", params={"limit": 2}).json()
    second = ops.get("/api/audit", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    trail = first["items"] + second["items"]
    assert [e["comment"] for e in trail[:3]] == ["note 2", "note 1", "note 0"]
    times = [e["at"] for e in trail]
    assert times == sorted(times, reverse=True)
    with httpx.Client(base_url=collector.url, headers=bearer("tl_globex"), timeout=30) as globex:
        assert globex.get("/api/audit").json()["items"] == []
        assert globex.get("/api/exceptions", params={"system": erp}).json()["groups"] == []
        assert globex.post(f"/api/transactions/A-{run}/resolve", json={"comment": "x"}).status_code == 404
    assert ops.get("/api/audit", params={"cursor": "nonsense"}).status_code == 400


def bulk(ops: httpx.Client, **body: Any) -> httpx.Response:
    return ops.post("/api/transactions/actions", json=body)


def test_resolving_many_transactions_at_once_answers_each_and_audits_each_on_its_own(
    ops: httpx.Client, ingest: httpx.Client
) -> None:
    run, erp, _ = scenario(ingest)
    keys = [f"SO-{run}", f"B-{run}", f"NOPE-{run}", f"A-{run}"]  # A by its alias, then by its own key

    response = bulk(ops, action="resolve", correlation_ids=keys, comment="fixed in bulk", operator="kim")

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["done"], result["not_found"], result["conflict"]) == (2, 1, 1)
    assert [(item["correlation_id"], item["outcome"]) for item in result["items"]] == [
        (f"SO-{run}", "done"),
        (f"B-{run}", "done"),
        (f"NOPE-{run}", "not_found"),
        (f"A-{run}", "conflict"),
    ]
    assert f"the same transaction as 'SO-{run}'" in result["items"][3]["reason"]
    for key in (f"A-{run}", f"B-{run}"):
        [entry] = ops.get("/api/audit", params={"transaction": key}).json()["items"]
        assert (entry["action"], entry["operator"], entry["comment"]) == ("resolve", "kim", "fixed in bulk")
    assert groups_of(exceptions(ops, system=erp)).get(("validation", erp)) is None

    again = bulk(ops, action="resolve", correlation_ids=[f"A-{run}", f"B-{run}"], comment="twice")

    assert [item["outcome"] for item in again.json()["items"]] == ["conflict", "conflict"]
    assert "already resolved by ops-dashboard" in again.json()["items"][0]["reason"]
    assert len(ops.get("/api/audit", params={"transaction": f"B-{run}"}).json()["items"]) == 1


def test_acknowledging_a_whole_exception_group_gives_each_transaction_its_own_entry(
    ops: httpx.Client, ingest: httpx.Client
) -> None:
    run, erp, _ = scenario(ingest)

    response = bulk(
        ops,
        action="acknowledge",
        exception_group={"kind": "validation", "system": erp},
        comment="VAT fix on its way",
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert {item["correlation_id"] for item in result["items"]} == {f"A-{run}", f"B-{run}"}
    assert result["done"] == 2
    group = groups_of(exceptions(ops, system=erp))["validation", erp]
    assert group["acknowledged"] == 2 and group["acknowledgement"] is None  # each, not the group
    for key in (f"A-{run}", f"B-{run}"):
        [entry] = ops.get("/api/audit", params={"transaction": key}).json()["items"]
        assert (entry["action"], entry["comment"]) == ("acknowledge", "VAT fix on its way")
    timeouts = groups_of(exceptions(ops, system=erp))["timeout", erp]  # another group: untouched
    assert timeouts["acknowledged"] == 0


def test_a_bulk_action_is_bounded_and_names_the_field_it_refuses(
    collector: CollectorProcess, ops: httpx.Client, ingest: httpx.Client
) -> None:
    too_many = bulk(ops, action="resolve", correlation_ids=[f"K-{i}" for i in range(501)], comment="x")
    neither = bulk(ops, action="resolve", comment="x")
    both = bulk(
        ops,
        action="resolve",
        correlation_ids=["A"],
        exception_group={"kind": "timeout", "system": "erp"},
        comment="x",
    )
    unknown = bulk(ops, action="delete", correlation_ids=["A"], comment="x")

    assert too_many.status_code == 422 and too_many.json()["problems"][0]["field"] == "correlation_ids"
    assert "501" in too_many.json()["message"] and "500" in too_many.json()["message"]
    assert neither.status_code == 422 and both.status_code == 422
    assert neither.json()["problems"][0]["field"] == "correlation_ids"
    assert unknown.status_code == 400 and unknown.json()["problems"][0]["field"] == "action"
    assert ingest.post("/api/transactions/actions", json={"action": "resolve"}).status_code == 403
