"""Whatever the integration passes, the SDK never raises into it; bad arguments are logged once."""

from __future__ import annotations

import datetime as dt
import logging
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.otlp_receiver import OtlpReceiver
from threadline import sdk
from threadline.contract.event import MAX_AMOUNT, MAX_ATTEMPT
from threadline.sdk import _arguments as check

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(),
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(
        st.one_of(st.text(), st.integers()), st.one_of(st.text(), st.none(), st.floats()), max_size=4
    ),
    st.builds(object),
    st.just(ValueError("boom")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    workflow=anything,
    step=anything,
    correlation_id=anything,
    status=anything,
    event_id=anything,
    aliases=anything,
    amount=anything,
    currency=anything,
    error=anything,
    attempt=anything,
    attributes=anything,
    timestamp=anything,
)
def test_no_argument_ever_raises_into_the_caller(configured: OtlpReceiver, **arguments: object) -> None:
    sdk.event(**arguments)  # type: ignore[arg-type]
    step_arguments = {key: value for key, value in arguments.items() if key != "timestamp"}
    with sdk.step(**step_arguments):  # type: ignore[arg-type]
        pass
    with pytest.raises(ZeroDivisionError), sdk.step(**step_arguments):  # type: ignore[arg-type]
        1 / 0  # noqa: B018
    with sdk.correlate(arguments["correlation_id"], alias=arguments["event_id"]):  # type: ignore[arg-type]
        sdk.inject(arguments["attributes"])  # type: ignore[arg-type]
        sdk.extract(arguments["aliases"])  # type: ignore[arg-type]


# Endpoints stay on this machine: a closed loopback port, with arbitrary text after it.
loopback_endpoints = st.one_of(
    st.none(), st.integers(), st.text().map(lambda path: "http://127.0.0.1:9/" + path)
)


@given(
    service=anything,
    system=anything,
    endpoint=loopback_endpoints,
    api_key=anything,
    redact_keys=anything,
    spool_dir=anything,
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_configure_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **arguments: object) -> None:
    monkeypatch.chdir(tmp_path)  # relative spool directories land here
    try:
        sdk.configure(**arguments)  # type: ignore[arg-type]
        sdk.event("renewal", "crm.renewal.opened", correlation_id="ACC-1")
    finally:
        sdk.shutdown(0.1)


def test_a_bad_argument_is_logged_once_per_call_site(configured: OtlpReceiver, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="threadline.sdk"):
        for _ in range(5):
            sdk.event("quote-to-cash", "erp.order.created", correlation_id="OPP-1", amount="a lot")  # type: ignore[arg-type]
        sdk.event("quote-to-cash", "erp.order.created", correlation_id="OPP-1", amount="another line")  # type: ignore[arg-type]
        assert sdk.flush(10)  # checked on the delivery thread, reported at the caller's line
    warnings = [message for message in caplog.messages if "amount must be a finite number" in message]
    assert len(warnings) == 2
    assert all("test_arguments.py:" in message for message in warnings)


def test_a_bad_optional_field_drops_only_that_field(configured: OtlpReceiver) -> None:
    bad: dict[str, Any] = {"amount": float("nan"), "currency": "euros", "attempt": 0}
    sdk.event(
        "quote-to-cash",
        "erp.order.created",
        correlation_id="OPP-2",
        **bad,
        attributes={"ok": "yes", "bad": object()},
    )
    assert sdk.flush(10)
    [span] = configured.business_events()
    assert span.attributes["ok"] == "yes"
    for dropped in ("threadline.amount", "threadline.currency", "threadline.attempt", "bad"):
        assert dropped not in span.attributes


def test_an_amount_or_attempt_the_collector_would_refuse_is_left_out_at_the_source(
    configured: OtlpReceiver,
) -> None:
    # The collector refuses a business event whose amount or attempt is beyond the contract's bounds;
    # the SDK drops only that field, so the event itself still counts.
    sdk.event("quote-to-cash", "erp.order.created", correlation_id="OPP-4", amount=MAX_AMOUNT * 10)
    sdk.event("quote-to-cash", "erp.order.created", correlation_id="OPP-5", attempt=MAX_ATTEMPT + 1)
    sdk.event(
        "quote-to-cash", "erp.order.created", correlation_id="OPP-6", amount=-MAX_AMOUNT, attempt=MAX_ATTEMPT
    )
    assert sdk.flush(10)
    spans = {span.attributes["threadline.correlation_id"]: span for span in configured.business_events()}
    assert "threadline.amount" not in spans["OPP-4"].attributes
    assert "threadline.attempt" not in spans["OPP-5"].attributes
    assert spans["OPP-6"].attributes["threadline.amount"] == -MAX_AMOUNT
    assert spans["OPP-6"].attributes["threadline.attempt"] == MAX_ATTEMPT


def test_an_event_without_its_required_fields_is_not_sent(configured: OtlpReceiver) -> None:
    sdk.event("", "erp.order.created", correlation_id="OPP-3")
    sdk.event("quote-to-cash", 42, correlation_id="OPP-3")  # type: ignore[arg-type]
    sdk.event("quote-to-cash", "erp.order.created")  # no correlation id anywhere
    sdk.event("quote-to-cash", "erp.order.created", correlation_id=1042)  # an integer key is fine
    assert sdk.flush(10)
    [span] = configured.business_events()
    assert span.attributes["threadline.correlation_id"] == "1042"


def test_user_attributes_cannot_overwrite_the_contract(configured: OtlpReceiver) -> None:
    sdk.event(
        "quote-to-cash",
        "erp.order.created",
        correlation_id="OPP-4",
        attributes={"threadline.workflow": "something-else"},
    )
    assert sdk.flush(10)
    [span] = configured.business_events()
    assert span.attributes["threadline.workflow"] == "quote-to-cash"


@pytest.mark.parametrize(
    ("given", "expected_ns"),
    [
        (dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC), 1767323045600000000),
        ("2026-01-02T03:04:05.6Z", 1767323045600000000),
        ("2026-01-02T04:04:05.6+01:00", 1767323045600000000),
        (1767323045.6, 1767323045600000000),
        (dt.datetime(2026, 1, 2, 3, 4, 5, 600000), 1767323045600000000),  # naive: taken as UTC
    ],
)
def test_timestamps_are_read_in_every_usual_form(given: object, expected_ns: int) -> None:
    assert abs(check.timestamp_ns(given) - expected_ns) < 1000


@pytest.mark.parametrize(
    "unusable", ["yesterday", float("nan"), -5.0, 1e30, dt.datetime(1, 1, 1, tzinfo=dt.UTC)]
)
def test_an_unusable_timestamp_becomes_now(unusable: object) -> None:
    import time

    assert abs(check.timestamp_ns(unusable) - time.time_ns()) < 5_000_000_000


def test_amounts_accept_every_kind_of_number() -> None:
    assert check.amount(Decimal("12.50")) == 12.5
    assert check.amount(3) == 3.0
    assert check.amount(True) is None
    assert check.amount(math.inf) is None
