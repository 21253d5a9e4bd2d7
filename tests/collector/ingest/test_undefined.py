"""Events the workflow definitions do not name are stored, and the collector says so.

An unknown workflow (a replayed log, a new integration ahead of its definition) or a step its
workflow does not define is accepted, never lost; the sender gets a warning in the ingest answer,
operators a counter on ``/metrics``, and the query API tells the transaction's readers that its
state cannot be judged. The shared collector runs workflows.example.yaml.
"""

from __future__ import annotations

import datetime as dt

import httpx

from tests.support.ingest import (
    MetricsSnapshot,
    business_event,
    event_count,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    post_events,
    unique_key,
)

UNDEFINED = "threadline_events_undefined_total"


def test_an_undefined_workflow_or_step_is_stored_with_a_warning_naming_it(http: httpx.Client) -> None:
    imported, amended, good = unique_key("IMP"), unique_key("OPP"), unique_key("OPP")
    workflow = unique_key("legacy-import")

    response = post_events(
        http,
        business_event(good),
        business_event(imported, workflow=workflow, step="import.row.read", system="csv"),
        business_event(amended, step="crm.opportunity.amended"),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (3, 0)
    assert body["warnings"] == [
        {
            "index": 1,
            "field": "workflow",
            "reason": f'workflow "{workflow}" is not defined in workflows.example.yaml; stored, but its '
            "state cannot be judged",
        },
        {
            "index": 2,
            "field": "step",
            "reason": 'step "crm.opportunity.amended" is not a step of workflow "quote-to-cash" in '
            "workflows.example.yaml; stored, but no rule of the definition applies to it",
        },
    ]
    assert [event_count(http, key) for key in (good, imported, amended)] == [1, 1, 1]
    assert post_events(http, business_event(unique_key("OPP"))).json()["warnings"] == []


def test_undefined_workflows_and_steps_are_counted_per_endpoint_and_reason(http: httpx.Client) -> None:
    workflow = unique_key("legacy-import")
    before = MetricsSnapshot.scrape(http)

    post_events(
        http,
        business_event(unique_key("IMP"), workflow=workflow),
        business_event(unique_key("IMP"), workflow=workflow),
        business_event(unique_key("OPP"), step="crm.opportunity.amended"),
        business_event(unique_key("OPP")),
    )
    spans = [
        otlp_json_span(
            new_trace_id(),
            new_span_id(),
            step,
            attributes={"threadline.correlation_id": unique_key("OTLP"), "threadline.workflow": name},
        )
        for name, step in ((workflow, "import.row.read"), ("quote-to-cash", "crm.opportunity.amended"))
    ]
    assert http.post("/v1/traces", json=otlp_json_request("netsuite", *spans)).status_code == 200

    after = MetricsSnapshot.scrape(http)
    assert after.types["threadline_events_undefined"] == "counter"
    moved = {
        (endpoint, reason): after.value(UNDEFINED, endpoint=endpoint, reason=reason)
        - before.value(UNDEFINED, endpoint=endpoint, reason=reason)
        for endpoint in ("events", "traces")
        for reason in ("undefined_workflow", "undefined_step")
    }
    assert moved == {
        ("events", "undefined_workflow"): 2,
        ("events", "undefined_step"): 1,
        ("traces", "undefined_workflow"): 1,
        ("traces", "undefined_step"): 1,
    }


def test_a_transaction_says_whether_its_workflow_and_steps_are_defined(http: httpx.Client) -> None:
    imported, amended = unique_key("IMP"), unique_key("OPP")
    post_events(
        http,
        business_event(imported, workflow=unique_key("legacy-import"), step="import.row.read"),
        business_event(amended),
        business_event(amended, step="crm.opportunity.amended", timestamp="2024-05-01T09:05:00Z"),
    )

    undefined = http.get(f"/api/transactions/{imported}").json()
    assert undefined["workflow_defined"] is False
    assert [(step["name"], step["expected"]) for step in undefined["steps"]] == [("import.row.read", False)]
    defined = http.get(f"/api/transactions/{amended}").json()
    assert defined["workflow_defined"] is True
    steps = {step["name"]: step["expected"] for step in defined["steps"]}
    assert steps["crm.opportunity.won"] is True and steps["crm.opportunity.amended"] is False


def test_workflows_seen_in_the_data_are_listed_beside_the_defined_ones_and_have_a_map(
    http: httpx.Client,
) -> None:
    workflow = unique_key("legacy-import")
    key = unique_key("IMP")
    started = dt.datetime(2023, 2, 1, 8, tzinfo=dt.UTC)
    post_events(
        http,
        *(
            business_event(
                key,
                workflow=workflow,
                step=step,
                timestamp=(started + n * dt.timedelta(minutes=5)).isoformat(),
            )
            for n, step in enumerate(("import.row.read", "import.order.created"))
        ),
    )

    listed = http.get("/api/workflows").json()
    names = [item["name"] for item in listed]
    defined = [item for item in listed if item["defined"]]
    assert [item["name"] for item in defined[:4]] == [
        "quote-to-cash",
        "customer-onboarding",
        "subscription-renewal",
        "support-credit",
    ]
    assert names.index(workflow) >= len(defined)  # after every definition
    seen = next(item for item in listed if item["name"] == workflow)
    assert seen["defined"] is False and seen["steps"] == [] and seen["stuck_after_seconds"] is None
    assert dt.datetime.fromisoformat(seen["last_started_at"]) == started

    process = http.get(f"/api/workflows/{workflow}/map")
    assert process.status_code == 200, process.text
    assert process.json()["transactions"] == 1
    assert [variant["steps"] for variant in process.json()["variants"]] == [
        ["import.row.read", "import.order.created"]
    ]
    # A range without its transactions is an empty map, not "no such workflow".
    later = http.get(f"/api/workflows/{workflow}/map", params={"since": "2024-01-01T00:00:00Z"})
    assert later.status_code == 200 and later.json()["transactions"] == 0
    assert http.get(f"/api/workflows/{unique_key('never-seen')}/map").status_code == 404


def test_a_workflows_last_start_is_the_start_of_its_latest_transaction_whatever_came_later(
    http: httpx.Client,
) -> None:
    workflow = unique_key("legacy-import")
    early, late = unique_key("IMP"), unique_key("IMP")
    started = dt.datetime(2023, 3, 1, 8, tzinfo=dt.UTC)

    def event(key: str, step: str, hours: int) -> dict[str, object]:
        timestamp = (started + dt.timedelta(hours=hours)).isoformat()
        return business_event(key, workflow=workflow, step=step, timestamp=timestamp)

    post_events(http, event(early, "import.row.read", 0), event(late, "import.row.read", 1))
    # Posted apart, so stored apart until the engine merges: the early transaction's last event,
    # three hours on, is not a start.
    post_events(http, event(early, "import.order.created", 3))

    seen = next(item for item in http.get("/api/workflows").json() if item["name"] == workflow)
    assert dt.datetime.fromisoformat(seen["last_started_at"]) == started + dt.timedelta(hours=1)
