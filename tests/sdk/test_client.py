"""Business events and steps, as a real OTLP/HTTP receiver sees them."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.otlp_receiver import OtlpReceiver
from threadline import sdk

STATUS_ERROR = 2  # OTLP Status.code


def only_event(receiver: OtlpReceiver) -> dict:
    assert sdk.flush(10)
    events = receiver.business_events()
    assert len(events) == 1, events
    return events[0].attributes


def test_an_event_carries_every_field_of_the_wire_contract(configured: OtlpReceiver) -> None:
    when = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    sdk.event(
        "quote-to-cash",
        "erp.order.created",
        correlation_id="OPP-1042",
        status="retrying",
        event_id="evt-1",
        aliases={"erp.sales_order": "SO-88812"},
        amount=1200.5,
        currency="eur",
        error={"kind": "transient", "message": "ERP busy"},
        attempt=2,
        attributes={"region": "emea", "lines": 3},
        timestamp=when,
    )
    assert sdk.flush(10)
    [span] = configured.business_events()
    assert span.name == "erp.order.created"
    assert span.resource["service.name"] == "order-sync"
    assert span.start_ns == span.end_ns == int(when.timestamp()) * 1_000_000_000
    assert span.attributes == {
        "threadline.correlation_id": "OPP-1042",
        "threadline.workflow": "quote-to-cash",
        "threadline.step": "erp.order.created",
        "threadline.system": "netsuite",
        "threadline.status": "retrying",
        "threadline.event_id": "evt-1",
        "threadline.alias.erp.sales_order": "SO-88812",
        "threadline.amount": 1200.5,
        "threadline.currency": "EUR",
        "threadline.error.kind": "transient",
        "threadline.error.message": "ERP busy",
        "threadline.attempt": 2,
        "region": "emea",
        "lines": "3",
    }


def test_every_event_gets_a_uuid7_event_id(configured: OtlpReceiver) -> None:
    for _ in range(3):
        sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-7")
    assert sdk.flush(10)
    ids = [span.event_id for span in configured.business_events()]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(event_id).version == 7 for event_id in ids)


def test_an_error_event_has_error_status_on_the_span(configured: OtlpReceiver) -> None:
    sdk.event(
        "support-credit",
        "billing.credit.posted",
        correlation_id="CASE-9",
        error={"kind": "business", "message": "credit exceeds invoice"},
    )
    assert sdk.flush(10)
    [span] = configured.business_events()
    assert span.attributes["threadline.status"] == "error"
    assert span.attributes["threadline.error.kind"] == "business"
    assert span.status_code == STATUS_ERROR


def test_a_step_is_timed_over_its_block(configured: OtlpReceiver) -> None:
    with sdk.step("quote-to-cash", "erp.customer.validated", correlation_id="OPP-1"):
        pass
    attributes = only_event(configured)
    [span] = configured.business_events()
    assert attributes["threadline.status"] == "ok"
    assert span.end_ns >= span.start_ns
    assert attributes["threadline.duration_ms"] == pytest.approx(
        (span.end_ns - span.start_ns) / 1e6, abs=0.01
    )


def test_the_callers_exception_is_reraised_unchanged_and_recorded(configured: OtlpReceiver) -> None:
    failure = ValueError("customer has no tax id")
    with pytest.raises(ValueError) as raised, sdk.step("onboarding", "erp.customer.created", "ACC-1"):
        raise failure
    assert raised.value is failure
    attributes = only_event(configured)
    assert attributes["threadline.status"] == "error"
    assert attributes["threadline.error.kind"] == "transient"  # the configured default kind
    assert attributes["threadline.error.message"] == "ValueError: customer has no tax id"


class GatewayTimeout(Exception):
    """A client library's own timeout class, as requests.Timeout or httpx.TimeoutException are."""


@pytest.mark.parametrize("exception", [TimeoutError("slow"), GatewayTimeout("504")])
def test_a_timeout_is_recorded_as_kind_timeout(configured: OtlpReceiver, exception: Exception) -> None:
    with pytest.raises(type(exception)), sdk.step("onboarding", "erp.customer.created", "ACC-2"):
        raise exception
    assert only_event(configured)["threadline.error.kind"] == "timeout"


def test_an_exception_can_name_its_own_error_kind(configured: OtlpReceiver) -> None:
    class Rejected(Exception):
        threadline_error_kind = "business"

    with pytest.raises(Rejected), sdk.step("quote-to-cash", "erp.order.created", "OPP-3"):
        raise Rejected("credit hold")
    assert only_event(configured)["threadline.error.kind"] == "business"


def test_the_default_error_kind_is_configurable(receiver: OtlpReceiver, spool_dir) -> None:
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir, default_error_kind="business")
    try:
        with pytest.raises(KeyError), sdk.step("renewal", "billing.invoice.sent", "ACC-4"):
            raise KeyError("plan")
        assert only_event(receiver)["threadline.error.kind"] == "business"
    finally:
        sdk.shutdown(2)


def test_a_step_can_be_refined_from_inside(configured: OtlpReceiver) -> None:
    with sdk.step("quote-to-cash", "erp.order.created", "OPP-5") as current:
        current.set_status("pending")
        current.set_attribute("erp.order_type", "standard")
        current.add_alias("erp.sales_order", "SO-5")
    attributes = only_event(configured)
    assert attributes["threadline.status"] == "pending"
    assert attributes["erp.order_type"] == "standard"
    assert attributes["threadline.alias.erp.sales_order"] == "SO-5"


async def _async_step() -> None:
    async with sdk.step("quote-to-cash", "billing.subscription.activated", "OPP-6"):
        pass


def test_a_step_works_in_async_code(configured: OtlpReceiver) -> None:
    import asyncio

    asyncio.run(_async_step())
    assert only_event(configured)["threadline.step"] == "billing.subscription.activated"


def test_events_inside_correlate_take_its_key_and_aliases(configured: OtlpReceiver) -> None:
    with sdk.correlate("OPP-7", **{"erp.sales_order": "SO-7"}):
        sdk.event("quote-to-cash", "crm.opportunity.won")
    attributes = only_event(configured)
    assert attributes["threadline.correlation_id"] == "OPP-7"
    assert attributes["threadline.alias.erp.sales_order"] == "SO-7"


def test_an_explicit_other_key_does_not_inherit_the_contexts_aliases(configured: OtlpReceiver) -> None:
    with sdk.correlate("OPP-8", **{"erp.sales_order": "SO-8"}):
        sdk.event("quote-to-cash", "crm.opportunity.won", correlation_id="OPP-9")
    attributes = only_event(configured)
    assert attributes["threadline.correlation_id"] == "OPP-9"
    assert "threadline.alias.erp.sales_order" not in attributes


def test_business_events_join_the_applications_own_trace(configured: OtlpReceiver) -> None:
    app_exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    app_tracer = app_provider.get_tracer("order-sync-app")

    with app_tracer.start_as_current_span("POST /orders") as app_span:
        sdk.event("quote-to-cash", "erp.order.created", correlation_id="OPP-10")
        with (
            sdk.step("quote-to-cash", "erp.order.confirmed", "OPP-10"),
            app_tracer.start_as_current_span("netsuite.http") as nested,
        ):
            assert isinstance(nested, ReadableSpan)  # the SDK's span, which knows its parent
            nested_parent = nested.parent
    assert sdk.flush(10)

    app_context = app_span.get_span_context()
    events = {span.name: span for span in configured.business_events()}
    created, confirmed = events["erp.order.created"], events["erp.order.confirmed"]
    assert created.trace_id == confirmed.trace_id == format(app_context.trace_id, "032x")
    assert created.parent_span_id == format(app_context.span_id, "016x")
    # Application spans inside a step become its children: the technical trace hangs off the event.
    assert nested_parent is not None and format(nested_parent.span_id, "016x") == confirmed.span_id
    # The application's provider is untouched and still exports its own spans (not ours).
    assert {span.name for span in app_exporter.get_finished_spans()} == {"POST /orders", "netsuite.http"}
    assert trace.get_tracer_provider() is not configured  # nothing installed globally


def test_events_are_recorded_even_when_the_applications_trace_is_not_sampled(
    configured: OtlpReceiver,
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    app_tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("app")
    with app_tracer.start_as_current_span("unsampled"):
        sdk.event("quote-to-cash", "crm.opportunity.won", correlation_id="OPP-11")
    assert only_event(configured)["threadline.correlation_id"] == "OPP-11"


def test_the_bearer_key_and_otel_headers_reach_the_collector(
    receiver: OtlpReceiver, spool_dir, monkeypatch
) -> None:
    seen: list[dict[str, str]] = []
    import http.server

    original = http.server.BaseHTTPRequestHandler.parse_request

    def recording_parse(self: http.server.BaseHTTPRequestHandler) -> bool:
        ok = original(self)
        seen.append({k.lower(): v for k, v in self.headers.items()})
        return ok

    monkeypatch.setattr(http.server.BaseHTTPRequestHandler, "parse_request", recording_parse)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
    monkeypatch.setenv("THREADLINE_API_KEY", "tl_secret")
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    try:
        sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-1")
        assert sdk.flush(10)
    finally:
        sdk.shutdown(2)
    assert seen and seen[-1]["authorization"] == "Bearer tl_secret"
    assert seen[-1]["x-tenant"] == "acme"


def test_the_endpoint_comes_from_the_standard_otel_variable(
    receiver: OtlpReceiver, spool_dir, monkeypatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-bridge")
    sdk.configure(spool_dir=spool_dir)
    try:
        sdk.event("renewal", "billing.invoice.sent", correlation_id="ACC-2")
        assert sdk.flush(10)
    finally:
        sdk.shutdown(2)
    [span] = receiver.business_events()
    assert span.resource["service.name"] == "billing-bridge"
    assert span.attributes["threadline.system"] == "billing-bridge"  # system defaults to the service


def test_the_sdk_configures_itself_from_the_environment_on_first_use(receiver, spool_dir) -> None:
    program = (
        "from threadline import sdk\n"
        "sdk.event('renewal', 'billing.payment.captured', correlation_id='ACC-3')\n"
        "assert sdk.flush(10)\n"
    )
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "THREADLINE_SPOOL_DIR": str(spool_dir),
        "THREADLINE_SYSTEM": "stripe",
        "OTEL_SERVICE_NAME": "payments",
    }
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    [span] = receiver.business_events()
    assert span.attributes["threadline.system"] == "stripe"
    assert span.resource["service.name"] == "payments"


# --- event() only records the call; the delivery thread checks it and builds its span ----------


def test_bad_arguments_are_checked_off_the_callers_thread_and_reported_at_its_line(
    configured: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="threadline.sdk"):
        sdk.event("quote-to-cash", "erp.order.created", correlation_id="OPP-20", amount="a lot")  # type: ignore[arg-type]
        line = sys._getframe().f_lineno - 1
        assert sdk.flush(10)
    [warning] = [record for record in caplog.records if "amount must be a finite number" in record.message]
    assert warning.threadName == "threadline-delivery"
    assert f"test_client.py:{line})" in warning.message
    assert "threadline.amount" not in only_event(configured)  # the event goes without the bad field


def test_an_event_is_a_child_of_the_span_current_at_the_call_though_built_later(
    configured: OtlpReceiver,
) -> None:
    app_tracer = TracerProvider().get_tracer("order-sync-app")
    with (
        app_tracer.start_as_current_span("POST /orders") as app_span,
        sdk.correlate("OPP-21", **{"erp.sales_order": "SO-21"}),
    ):
        sdk.event("quote-to-cash", "erp.order.created")
    with app_tracer.start_as_current_span("another request"):  # current when the event is sent
        assert sdk.flush(10)
    [event] = configured.business_events()
    assert event.trace_id == format(app_span.get_span_context().trace_id, "032x")
    assert event.parent_span_id == format(app_span.get_span_context().span_id, "016x")
    assert event.attributes["threadline.correlation_id"] == "OPP-21"
    assert event.attributes["threadline.alias.erp.sales_order"] == "SO-21"


def test_what_is_sent_is_what_was_passed_though_the_caller_changes_it_afterwards(
    configured: OtlpReceiver,
) -> None:
    aliases = {"erp.sales_order": "SO-22"}
    error = {"kind": "business", "message": "credit hold"}
    attributes = {"region": "emea"}
    sdk.event(
        "quote-to-cash",
        "erp.order.created",
        correlation_id="OPP-22",
        aliases=aliases,
        error=error,
        attributes=attributes,
    )
    aliases["erp.sales_order"] = "SO-99"  # the integration reuses its dicts for the next order
    error["message"] = "released"
    attributes.update(region="apac", next_order="OPP-23")
    sent = only_event(configured)
    assert sent["threadline.alias.erp.sales_order"] == "SO-22"
    assert sent["threadline.error.message"] == "credit hold"
    assert sent["region"] == "emea"
    assert "next_order" not in sent


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("this object cannot be shown")


def test_an_argument_that_breaks_its_check_costs_only_its_own_event(
    configured: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="threadline.sdk"):
        sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-1")
        sdk.event(  # raises nothing here; its check fails on the delivery thread
            "renewal",
            "crm.renewal.opened",
            correlation_id="ACC-2",
            error={"message": Unprintable()},  # type: ignore[dict-item]
        )
        sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-3")
        assert sdk.flush(10)
    sent = {span.attributes["threadline.correlation_id"] for span in configured.business_events()}
    assert sent == {"ACC-1", "ACC-3"}
    assert any("event() failed; the event was not recorded" in message for message in caplog.messages)
