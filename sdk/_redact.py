"""PII redaction: attribute values under sensitive keys leave the process only as a salted hash.

The hash is keyed (HMAC-SHA256) with a deployment-wide salt, so the same e-mail address gives the
same token in every system that shares the salt: transactions can still be joined on it, but the
clear value never reaches the collector.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "email",
    "e_mail",
    "phone",
    "phone_number",
    "mobile",
    "tax_id",
    "vat_id",
    "ssn",
    "card_number",
    "credit_card",
    "iban",
    "password",
)
DEFAULT_SALT = "threadline"
REDACTED_PREFIX = "redacted:"

Value = TypeVar("Value")  # str for the SDK's attributes; any OpenTelemetry value at the collector

_SEPARATORS = re.compile(r"[^0-9a-z]+")


def _tokens(key: str) -> tuple[str, ...]:
    return tuple(token for token in _SEPARATORS.split(key.lower()) if token)


class Redactor:
    """Decides which attribute keys are sensitive and replaces their values.

    A key is sensitive when its words end with the words of a configured key, whatever the case
    and separators: with ``email`` configured, ``email``, ``Customer-Email`` and
    ``billing.contact_email`` are all redacted.
    """

    def __init__(self, keys: Iterable[str] = (), salt: str = DEFAULT_SALT) -> None:
        configured = {_tokens(key) for key in (*DEFAULT_REDACT_KEYS, *keys)}
        self._keys = frozenset(tokens for tokens in configured if tokens)
        self._salt = salt.encode()
        self._decisions: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        decision = self._decisions.get(key)
        if decision is None:
            tokens = _tokens(key)
            decision = any(tokens[-len(k) :] == k for k in self._keys if len(k) <= len(tokens))
            if len(self._decisions) < 10_000:  # keys are few in practice; never grow without bound
                self._decisions[key] = decision
        return decision

    def hash(self, value: str) -> str:
        digest = hmac.new(self._salt, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return REDACTED_PREFIX + digest.hexdigest()[:32]

    def redact(self, attributes: Mapping[str, Value]) -> dict[str, Value | str]:
        """A copy of ``attributes`` in which every value under a sensitive key is hashed.

        Values may be typed, as OpenTelemetry attributes are: a number, a list or a map under a
        sensitive key is hashed whole (as its JSON), and maps inside values are redacted by the same
        rules, since an integration may nest ``{"customer": {"email": ...}}``.
        """
        return {key: self._redacted(key, value) for key, value in attributes.items()}

    def _redacted(self, key: str, value: Value) -> Value | str:
        if not self.is_sensitive(key):
            return self._nested(value)
        if value is None:
            return value
        if isinstance(value, str):
            return value if value.startswith(REDACTED_PREFIX) else self.hash(value)
        return self.hash(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def _nested(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return self.redact(value)
        if isinstance(value, list):
            return [self._nested(item) for item in value]
        return value
