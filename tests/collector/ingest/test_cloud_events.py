"""``POST /v1/cloudevents``: CloudEvents in structured, binary and batch mode, made by the official
CloudEvents SDK as a sender makes them, over real HTTP to a real collector, read back through the query API.

An event with the BAM extension is a business event as it stands; any other goes through the
``cloudevents`` webhook mappings; ``source`` + ``id`` identify it, so a re-delivery counts once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import assert_error, event_count, unique_key
from tests.support.stores import Stores
from threadline.collector.config import EXAMPLE_WEBHOOKS

pytestmark = pytest.mark.slow

FORMAT = JSONFormat()
WHEN = "2026-11-02T09:30:00Z"
AT = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def live_collector(stores: Stores) -> Iterator[CollectorProcess]:
    """This module's collector (``http`` speaks to it), with the shipped mappings file."""
    collector = stores.collector(
        {"THREADLINE_WEBHOOKS": str(EXAMPLE_WEBHOOKS), "STRIPE_WEBHOOK_SECRET": "whsec_unused"}
    ).start()
    yield collector
    collector.stop()


def bam_event(key: str, **attributes: Any) -> CloudEvent:
    """An order-to-cash step as an integration platform emits it, with the BAM extension."""
    return CloudEvent(
        {
            "id": f"a1b2-{key}",
            "source": "/mulesoft/order-sync",
            "type": "com.example.order.step",
            "specversion": "1.0",
            "time": AT,
            "bamtxid": key,
            "bampid": "quote-to-cash",
            "bamptxid": "order",
            "bamptxsid": "erp.order.created",
            "bamptxsstatus": "success",
            **attributes,
        },
        {"orderNumber": f"SO-{key}"},
    )


def s4hana_sales_order_created(sales_order: str) -> CloudEvent:
    """SAP S/4HANA's business event, as SAP Event Mesh delivers it: no BAM extension."""
    return CloudEvent(
        {
            "id": f"6f3b1c9e-{sales_order}",
            "source": "/default/sap.s4.beh/S4HCLNT100",
            "type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
            "specversion": "1.0",
            "time": AT + dt.timedelta(minutes=35),
            "datacontenttype": "application/json",
        },
        {"SalesOrder": sales_order, "SalesOrganization": "1010", "SoldToParty": "17100001"},
    )


def send(http: httpx.Client, message: HTTPMessage) -> httpx.Response:
    return http.post("/v1/cloudevents", content=message.body, headers=message.headers)


def send_batch(http: httpx.Client, *events: CloudEvent) -> httpx.Response:
    batch = b"[" + b",".join(FORMAT.write(event) for event in events) + b"]"
    return http.post(
        "/v1/cloudevents", content=batch, headers={"content-type": "application/cloudevents-batch+json"}
    )


def stored_event(http: httpx.Client, key: str) -> dict[str, Any]:
    response = http.get(f"/api/transactions/{key}")
    assert response.status_code == 200, response.text
    [event] = response.json()["events"]
    return dict(event)


def test_a_structured_cloudevent_with_the_bam_extension_is_a_business_event(http: httpx.Client) -> None:
    key = unique_key("OPP")

    response = send(http, to_structured(bam_event(key), FORMAT))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "warnings": []}
    event = stored_event(http, key)
    assert {
        name: event[name] for name in ("workflow", "step", "status", "system", "timestamp", "source")
    } == {
        "workflow": "quote-to-cash",
        "step": "erp.order.created",
        "status": "ok",
        "system": "/mulesoft/order-sync",
        "timestamp": WHEN,
        "source": "cloudevents",
    }
    assert event["event_id"].startswith("ce:")
    assert event["attributes"] == {
        "cloudevents.type": "com.example.order.step",
        "cloudevents.id": f"a1b2-{key}",
        "cloudevents.source": "/mulesoft/order-sync",
        "cloudevents.bamptxid": "order",
    }


def test_a_binary_cloudevent_reads_its_percent_encoded_ce_headers(http: httpx.Client) -> None:
    key = unique_key("Auftrag Köln")  # a space and a non-ASCII letter: percent-encoded in the header
    message = to_binary(bam_event(key, bamptxsstatus="failure"), FORMAT)
    assert message.headers["ce-bamtxid"] != key

    response = send(http, message)

    assert response.status_code == 200, response.text
    event = stored_event(http, key)
    assert (event["correlation_id"], event["status"], event["error"]["kind"]) == (key, "error", "transient")


@pytest.mark.parametrize(
    ("bam", "status"), [("success", "ok"), ("waiting", "pending"), ("retrying", "retrying")]
)
def test_bam_step_statuses_map_to_the_event_status(http: httpx.Client, bam: str, status: str) -> None:
    key = unique_key("OPP")
    assert send(http, to_structured(bam_event(key, bamptxsstatus=bam), FORMAT)).status_code == 200
    assert stored_event(http, key)["status"] == status


def test_a_batch_stores_bam_and_mapped_cloudevents_together(http: httpx.Client) -> None:
    key, sales_order = unique_key("OPP"), unique_key("88812")

    response = send_batch(http, bam_event(key), s4hana_sales_order_created(sales_order))

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert stored_event(http, key)["step"] == "erp.order.created"
    mapped = stored_event(http, sales_order)
    assert {name: mapped[name] for name in ("workflow", "step", "system", "timestamp", "attributes")} == {
        "workflow": "quote-to-cash",
        "step": "erp.order.created",
        "system": "s4hana",
        "timestamp": "2026-11-02T10:05:00Z",
        "attributes": {"sales_organization": "1010", "sold_to_party": "17100001"},
    }


def test_a_cloudevent_without_bam_goes_through_the_cloudevents_mappings_in_binary_mode(
    http: httpx.Client,
) -> None:
    sales_order = unique_key("88812")
    response = send(http, to_binary(s4hana_sales_order_created(sales_order), FORMAT))
    assert response.status_code == 200, response.text
    assert stored_event(http, sales_order)["system"] == "s4hana"


def test_a_redelivered_cloudevent_counts_once_by_source_and_id(http: httpx.Client) -> None:
    key = unique_key("OPP")
    event = bam_event(key)

    first = send(http, to_structured(event, FORMAT))
    again = send(http, to_binary(event, FORMAT))  # the same event, re-delivered in the other mode
    other_source = send(http, to_structured(bam_event(key, source="/boomi/order-sync"), FORMAT))

    assert first.json()["accepted"] == 1, first.text
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1), again.text
    assert other_source.json()["accepted"] == 1, (
        other_source.text
    )  # the same id from elsewhere: another event
    assert event_count(http, key) == 2


def test_a_cloudevent_neither_bam_nor_mapped_is_a_422_listing_the_mappings_tried(http: httpx.Client) -> None:
    event = CloudEvent(
        {"id": "1", "source": "/github/acme", "type": "com.github.push", "specversion": "1.0", "time": AT},
        {"ref": "main"},
    )

    response = send(http, to_structured(event, FORMAT))

    body = assert_error(response, 422, "no_mapping_matched")
    assert body["message"] == (
        "no mapping of source 'cloudevents' matches this body (tried s4hana-sales-order-created); "
        "nothing was stored"
    )
    assert [problem["field"] for problem in body["problems"]] == [
        "bamtxid",
        "s4hana-sales-order-created.when",
    ]
    assert body["problems"][1]["reason"] == (
        "body.type == 'sap.s4.beh.salesorder.v1.SalesOrder.Created.v1' is false for this body"
    )


def test_required_attributes_missing_are_a_400_naming_them(http: httpx.Client) -> None:
    key = unique_key("OPP")
    structured = {"specversion": "1.0", "type": "com.example.order.step", "bamtxid": key, "bampid": "q2c"}
    response = http.post(
        "/v1/cloudevents",
        content=orjson.dumps(structured),
        headers={"content-type": "application/cloudevents+json"},
    )
    problems = assert_error(response, 400, "invalid_events")["problems"]
    assert [problem["field"] for problem in problems] == ["id", "source"]

    binary = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "content-type": "application/json"}
    response = http.post("/v1/cloudevents", content=b"{}", headers=binary)
    assert [problem["field"] for problem in assert_error(response, 400, "invalid_events")["problems"]] == [
        "ce-type"
    ]
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_a_batch_is_all_or_nothing_and_names_the_bad_events_index(http: httpx.Client) -> None:
    good, bad = unique_key("OPP"), unique_key("OPP")
    without_step = bam_event(bad)
    attributes = without_step.get_attributes()
    del attributes["bamptxsid"]

    response = send_batch(http, bam_event(good), CloudEvent(attributes, None))

    problems = assert_error(response, 400, "invalid_events")["problems"]
    assert problems == [{"index": 1, "field": "bamptxsid", "reason": "is required"}]
    assert http.get(f"/api/transactions/{good}").status_code == 404
    alone = assert_error(send_batch(http, CloudEvent(attributes, None)), 400, "invalid_events")["problems"]
    assert alone == [{"index": 0, "field": "bamptxsid", "reason": "is required"}]  # in a batch of one too


def test_a_bam_status_the_contract_does_not_know_is_a_400_naming_the_attribute(http: httpx.Client) -> None:
    response = send(http, to_structured(bam_event(unique_key("OPP"), bamptxsstatus="exploded"), FORMAT))
    [problem] = assert_error(response, 400, "invalid_events")["problems"]
    assert problem["field"] == "bamptxsstatus"


def test_a_body_that_is_no_cloudevent_mode_is_a_415(http: httpx.Client) -> None:
    response = http.post("/v1/cloudevents", json={"id": "1"})
    assert_error(response, 415, "unsupported_media_type")


def structured_json(key: str, **attributes: Any) -> bytes:
    """A structured-mode body written by hand, for what the SDK would not let a sender write."""
    event = {
        "specversion": "1.0",
        "id": f"c9-{key}",
        "source": "/mulesoft/order-sync",
        "type": "com.example.order.step",
        "bamtxid": key,
        "bampid": "quote-to-cash",
        "bamptxsid": "crm.opportunity.won",
        **attributes,
    }
    return orjson.dumps({name: value for name, value in event.items() if value is not None})


@pytest.mark.parametrize("time", [123, "yesterday", "2026-13-45T00:00:00Z"])
def test_a_time_that_is_not_rfc_3339_is_a_400_naming_it(http: httpx.Client, time: object) -> None:
    key = unique_key("OPP")
    response = http.post(
        "/v1/cloudevents",
        content=structured_json(key, time=time),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert [problem["field"] for problem in assert_error(response, 400, "invalid_events")["problems"]] == [
        "time"
    ]
    assert http.get(f"/api/transactions/{key}").status_code == 404


def test_an_event_without_a_time_happened_when_it_arrived(http: httpx.Client) -> None:
    key = unique_key("OPP")
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    response = http.post(
        "/v1/cloudevents",
        content=structured_json(key),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 200, response.text
    stored = dt.datetime.fromisoformat(stored_event(http, key)["timestamp"])
    assert before <= stored <= dt.datetime.now(dt.UTC)
