"""Personal data never leaves the process in clear: sensitive attributes become a salted hash."""

from __future__ import annotations

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from threadline import sdk
from threadline.sdk._redact import Redactor


@pytest.mark.parametrize(
    "key",
    ["email", "Customer-Email", "billing.contact_email", "phone", "tax_id", "TaxID".lower(), "card_number"],
)
def test_default_sensitive_keys_match_whatever_the_case_and_separators(key: str) -> None:
    if key == "taxid":
        assert not Redactor().is_sensitive(key)  # one word, not "tax id": not a match
    else:
        assert Redactor().is_sensitive(key)


def test_ordinary_keys_are_left_alone() -> None:
    redactor = Redactor()
    assert not redactor.is_sensitive("region")
    assert not redactor.is_sensitive("email_count_bucket")
    assert redactor.redact({"region": "emea"}) == {"region": "emea"}


def test_typed_and_nested_values_are_redacted_by_the_same_rules() -> None:
    redactor = Redactor()
    assert redactor.redact(
        {"phone": 5550100, "customer": {"email": "jane@example.com", "tier": "gold"}, "lines": [1, 2]}
    ) == {
        "phone": redactor.hash("5550100"),  # a number hashes as its text, so it joins a string sent elsewhere
        "customer": {"email": redactor.hash("jane@example.com"), "tier": "gold"},
        "lines": [1, 2],
    }


def test_the_hash_is_stable_and_salted() -> None:
    one, again, other_salt = Redactor(salt="a"), Redactor(salt="a"), Redactor(salt="b")
    assert one.hash("jane@example.com") == again.hash("jane@example.com")  # joins still work
    assert one.hash("jane@example.com") != other_salt.hash("jane@example.com")
    assert "jane" not in one.hash("jane@example.com")


def test_configured_keys_are_redacted_before_leaving_the_process(
    receiver: OtlpReceiver, spool_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_REDACT_KEYS", "contract_holder, iban_owner")
    sdk.configure(
        service="s", endpoint=receiver.endpoint, spool_dir=spool_dir, redact_keys=["loyalty_number"]
    )
    try:
        sdk.event(
            "onboarding",
            "crm.account.created",
            correlation_id="ACC-1",
            attributes={
                "customer_email": "jane@example.com",
                "contract_holder": "Jane Doe",
                "loyalty_number": "LN-778",
                "region": "emea",
            },
        )
        assert sdk.flush(10)
    finally:
        sdk.shutdown(2)
    [span] = receiver.business_events()
    for key, clear in [
        ("customer_email", "jane@example.com"),
        ("contract_holder", "Jane Doe"),
        ("loyalty_number", "LN-778"),
    ]:
        assert span.attributes[key].startswith("redacted:")
        assert clear not in span.attributes[key]
    assert span.attributes["region"] == "emea"
