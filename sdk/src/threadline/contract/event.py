"""A business event's vocabularies and limits (docs/architecture.md, "Where each rule is decided").

The collector refuses what breaks them (README, "What the collector refuses, and why"); the SDK
checks the same bounds before sending, so a value the collector would refuse is left out at the
source, with a warning, instead of costing the event.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorKind = Literal["transient", "business", "validation", "auth", "timeout"]
Status = Literal["ok", "error", "retrying", "pending"]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)
STATUSES: tuple[Status, ...] = get_args(Status)
# The kind of an error sent without one (an exception in an SDK step, an OTLP span with status
# ERROR, `status: "error"` with no error object), so every path agrees.
DEFAULT_ERROR_KIND: ErrorKind = "transient"

MAX_KEY_LENGTH = 256  # correlation id, step, event id, alias value, attribute key
MAX_NAME_LENGTH = 128  # workflow, system, correlation kind, alias kind
MAX_ATTRIBUTES = 128
MAX_ALIASES = 32
MAX_ATTRIBUTE_VALUE = 16 * 1024
MAX_EVENTS_PER_BATCH = 10_000
MAX_ERROR_MESSAGE = 4096
MAX_ERROR_TYPE = 256
MAX_STACKTRACE = 32 * 1024
MAX_ATTEMPT = 1_000_000
# Larger than any real invoice, even in currencies of 25 000 units to the dollar, and small enough
# that the sum of millions of them stays finite (value at risk, Prometheus, alerts).
MAX_AMOUNT = 1e15


def is_timeout_type(type_name: str) -> bool:
    """Whether an exception class, by name, is a timeout: ``TimeoutError``, requests' ``ReadTimeout``,
    httpx's ``TimeoutException``, Java's ``java.net.SocketTimeoutException``, .NET's ``TimeoutException``.
    The SDK classifies a step's exception and the collector an OTLP ``exception.type`` by this rule."""
    return "timeout" in type_name.rsplit(".", 1)[-1].lower()
