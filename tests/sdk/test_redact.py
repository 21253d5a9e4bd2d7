"""Personal data never leaves the process in clear: sensitive attributes become a salted hash."""

from __future__ import annotations

import json

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from threadline import sdk
from threadline.contract.redaction import Redactor


@pytest.mark.parametrize(
    "key",
    [
        "email",
        "Customer-Email",
        "billing.contact_email",
        "phone",
        "tax_id",
        "card_number",
        # camelCase, PascalCase and acronyms are words too, and the sensitive words may be anywhere
        "customerEmail",
        "cardNumber",
        "phoneNumber",
        "contactEmail",
        "Email-Address",
        "emailAddress",
        "E-Mail",
        "IBANNumber",
        "customer email",
        "billing.Contact-Email.primary",
        "email_count_bucket",  # a false alarm hides a count; a miss would leak an address
    ],
)
def test_default_sensitive_keys_match_whatever_the_case_separators_and_position(key: str) -> None:
    assert Redactor().is_sensitive(key)


def test_one_word_is_not_two() -> None:
    assert not Redactor().is_sensitive("taxid")  # "tax id" is two words; "taxid" is neither
    assert not Redactor().is_sensitive("businessName")  # holds the letters of "ssn", not the word


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


def test_maps_and_lists_are_redacted_at_any_depth() -> None:
    redactor = Redactor()
    sent = {"order": {"parties": [{"billing": {"contactEmail": "ap@globex.example"}}], "lines": 3}}
    assert redactor.redact(sent) == {
        "order": {"parties": [{"billing": {"contactEmail": redactor.hash("ap@globex.example")}}], "lines": 3}
    }


def test_a_key_value_list_sent_as_json_text_is_redacted_inside() -> None:
    redactor = Redactor()
    redacted = redactor.redact_texts({"customer": '{"email": "jane@example.com", "tier": "gold"}', "n": "{x"})
    assert json.loads(redacted["customer"]) == {"email": redactor.hash("jane@example.com"), "tier": "gold"}
    assert redacted["n"] == "{x"  # not JSON: an ordinary value, kept as sent


def test_a_token_of_the_same_salt_is_kept_and_anything_else_prefixed_redacted_is_hashed() -> None:
    sdk_side, collector_side = Redactor(salt="shared"), Redactor(salt="shared")
    token = sdk_side.hash("jane@example.com")
    assert collector_side.redact({"email": token}) == {"email": token}  # idempotent under one salt
    for smuggled in (
        "redacted:jane@example.com",  # clear text behind the prefix
        "redacted:" + "6a616e65406578616d706c652e636f6d" + "0" * 16,  # hex of clear text, forged check
        Redactor(salt="other").hash("jane@example.com"),  # a token of another salt
    ):
        assert collector_side.redact({"email": smuggled}) == {"email": collector_side.hash(smuggled)}


def test_alias_values_of_a_sensitive_kind_are_hashed_by_the_same_rules() -> None:
    redactor = Redactor()
    aliases = {"contact_email": "jane@example.com", "erp.sales_order": "SO-1"}
    assert redactor.redact(aliases) == {
        "contact_email": redactor.hash("jane@example.com"),
        "erp.sales_order": "SO-1",
    }


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


def test_aliases_and_json_attributes_leave_the_process_hashed(receiver: OtlpReceiver, spool_dir) -> None:
    sdk.configure(service="s", endpoint=receiver.endpoint, spool_dir=spool_dir)
    try:
        sdk.event(
            "onboarding",
            "crm.account.created",
            correlation_id="ACC-2",
            aliases={"contact_email": "jane@example.com", "erp.customer": "C-9"},
            attributes={"customerEmail": "ap@globex.example", "customer": '{"phoneNumber": "+1 555 0100"}'},
        )
        assert sdk.flush(10)
    finally:
        sdk.shutdown(2)
    [span] = receiver.business_events()
    hashed = Redactor().hash
    assert span.attributes["threadline.alias.contact_email"] == hashed("jane@example.com")
    assert span.attributes["threadline.alias.erp.customer"] == "C-9"
    assert span.attributes["customerEmail"] == hashed("ap@globex.example")
    assert json.loads(span.attributes["customer"]) == {"phoneNumber": hashed("+1 555 0100")}
