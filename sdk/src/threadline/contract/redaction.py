"""PII redaction: attribute values under sensitive keys leave the process only as a salted hash.

The hash is keyed (HMAC-SHA256) with a deployment-wide salt, so the same e-mail address gives the
same token in every system that shares the salt: transactions can still be joined on it, but the
clear value never reaches the collector.

A token carries a check (an HMAC of its hash under the same salt), so whoever holds the salt can
tell a token it could have made from text that merely starts with ``redacted:``: the collector
keeps the SDK's tokens as they are (hashing is idempotent under one salt) and hashes anything
else under a sensitive key, a forged or foreign-salted "token" included.
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
_HASH_DIGITS, _CHECK_DIGITS = 32, 16  # 128 bits to join on; 64 bits no sender can guess
_TOKEN = re.compile(rf"{REDACTED_PREFIX}([0-9a-f]{{{_HASH_DIGITS}}})([0-9a-f]{{{_CHECK_DIGITS}}})")

Value = TypeVar("Value")  # str for the SDK's attributes; any OpenTelemetry value at the collector

# The words of a key, whatever its style: camelCase, PascalCase, ACRONYMWords, snake_case,
# kebab-case, dotted.path, "spaced words" ("customerEmail" → customer email, "IBANNumber" →
# iban number, "Email-Address" → email address).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(key: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORDS.findall(key))


class Redactor:
    """Decides which attribute keys are sensitive and replaces their values.

    A key is sensitive when its words contain the words of a configured key, in order, whatever
    the case and separators: with ``email`` configured, ``email``, ``customerEmail``,
    ``Email-Address`` and ``billing.contact_email`` are all redacted (and so is ``email_count``:
    a false alarm hides a count, a miss would leak an address).
    """

    def __init__(self, keys: Iterable[str] = (), salt: str = DEFAULT_SALT) -> None:
        configured = {_words(key) for key in (*DEFAULT_REDACT_KEYS, *keys)}
        self._keys = frozenset(words for words in configured if words)
        self._salt = salt.encode()
        self._decisions: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        decision = self._decisions.get(key)
        if decision is None:
            words = _words(key)
            decision = any(
                words[start : start + len(sensitive)] == sensitive
                for sensitive in self._keys
                for start in range(len(words) - len(sensitive) + 1)
            )
            if len(self._decisions) < 10_000:  # keys are few in practice; never grow without bound
                self._decisions[key] = decision
        return decision

    def hash(self, value: str) -> str:
        """The token of ``value``: the same for the same value and salt, and carrying its check."""
        digest = self._mac(value.encode("utf-8", "surrogatepass"))[:_HASH_DIGITS]
        return REDACTED_PREFIX + digest + self._check(digest)

    def is_token(self, value: str) -> bool:
        """Whether ``value`` is a token made with this salt (not just text that looks like one)."""
        match = _TOKEN.fullmatch(value)
        return match is not None and hmac.compare_digest(match[2], self._check(match[1]))

    def redact(self, attributes: Mapping[str, Value]) -> dict[str, Value | str]:
        """A copy of ``attributes`` in which every value under a sensitive key is hashed.

        Values may be typed, as OpenTelemetry attributes are: a number, a list or a map under a
        sensitive key is hashed whole (as its JSON), and maps inside values are redacted by the same
        rules, at any depth, since an integration may nest ``{"customer": {"email": ...}}``.
        """
        return {key: self._redacted(key, value) for key, value in attributes.items()}

    def redact_texts(self, attributes: Mapping[str, str]) -> dict[str, str]:
        """``redact`` for attributes kept as text: a value that is a JSON object or list (how a
        key-value list travels as a business event's attribute) is redacted inside too."""
        return {key: self._redacted_text(key, value) for key, value in attributes.items()}

    def _redacted_text(self, key: str, value: str) -> str:
        redacted = self._redacted(key, value)
        if redacted is not value or not value.lstrip().startswith(("{", "[")):
            return str(redacted)
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        inside = self._nested(parsed)
        return value if inside == parsed else json.dumps(inside, ensure_ascii=False, separators=(",", ":"))

    def _redacted(self, key: str, value: Value) -> Value | str:
        if not self.is_sensitive(key):
            return self._nested(value)
        if value is None:
            return value
        if isinstance(value, str):
            return value if self.is_token(value) else self.hash(value)
        return self.hash(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def _nested(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return self.redact(value)
        if isinstance(value, list):
            return [self._nested(item) for item in value]
        return value

    def _mac(self, message: bytes) -> str:
        return hmac.new(self._salt, message, hashlib.sha256).hexdigest()

    def _check(self, digest: str) -> str:
        return self._mac(b"check:" + digest.encode())[:_CHECK_DIGITS]
