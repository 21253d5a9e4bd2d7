"""Checking what the integration passes in: a bad argument is logged once per call site, never raised.

Each check returns the cleaned value, or ``None`` when the value cannot be used (the event then
goes without that field, or, for a required field, is not sent).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from types import FrameType

from threadline.contract.attributes import PREFIX
from threadline.contract.event import (
    ERROR_KINDS,
    MAX_AMOUNT,
    MAX_ATTEMPT,
    MAX_ERROR_MESSAGE,
    STATUSES,
    is_timeout_type,
)

logger = logging.getLogger("threadline.sdk")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_warned: set[tuple[str, int, str]] = set()
_warned_lock = threading.Lock()
MAX_WARNED_SITES = 10_000
_deferred = threading.local()  # the call site of the event being built on the delivery thread


@contextmanager
def reported_at(site: tuple[str, int]) -> Iterator[None]:
    """Warnings inside name ``site``: an event recorded by the caller is checked later on another thread."""
    _deferred.site = site
    try:
        yield
    finally:
        _deferred.site = None


def _call_site() -> tuple[str, int]:
    site: tuple[str, int] | None = getattr(_deferred, "site", None)
    if site is not None:
        return site
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame = frame.f_back
    if frame is None:
        return "<unknown>", 0
    return frame.f_code.co_filename, frame.f_lineno


def warn_once(message: str) -> None:
    """Log ``message`` as a warning, once per line of the integration's code that caused it."""
    filename, line = _call_site()
    key = (filename, line, message.split(",")[0])
    with _warned_lock:
        if key in _warned or len(_warned) >= MAX_WARNED_SITES:
            return
        _warned.add(key)
    logger.warning("threadline: %s (at %s:%d)", message, filename, line)


def required_text(name: str, value: object, function: str) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    warn_once(f"{function}() needs {name} as a non-empty string, got {value!r}; event not sent")
    return None


def correlation_id(value: object, function: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # order numbers are often integers
    if isinstance(value, str) and value.strip():
        return value
    if value is None:
        warn_once(
            f"{function}() has no correlation_id: pass one or call it inside sdk.correlate(); event not sent"
        )
    else:
        warn_once(f"{function}() needs correlation_id as a string, got {value!r}; event not sent")
    return None


def status(value: object, has_error: bool) -> str:
    if isinstance(value, str) and value in STATUSES:
        return value
    fallback = "error" if has_error else "ok"
    warn_once(f"status must be one of {sorted(STATUSES)}, got {value!r}; using {fallback!r}")
    return fallback


def optional_text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return value
    warn_once(f"{name} must be a non-empty string, got {value!r}; ignored")
    return None


def amount(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and -MAX_AMOUNT <= number <= MAX_AMOUNT:
            return number
    warn_once(
        f"amount must be a finite number from -{MAX_AMOUNT:,.0f} to {MAX_AMOUNT:,.0f}, got {value!r}; ignored"
    )
    return None


def currency(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    warn_once(f"currency must be a three-letter ISO 4217 code, got {value!r}; ignored")
    return None


def attempt(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ATTEMPT:
        return value
    warn_once(f"attempt must be a whole number from 1 to {MAX_ATTEMPT:,}, got {value!r}; ignored")
    return None


def snapshot(value: object) -> object:
    """A copy of a mapping argument, taken on the caller's thread, so that the integration may change
    or reuse its dict once ``event()`` returned. Shallow is enough: only scalar values are kept."""
    if value is None or (type(value) is not dict and not isinstance(value, Mapping)):
        return value
    return dict(value)


def _scalar_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | Decimal):
        return str(value)
    return None


def string_map(name: str, value: object, reserved_prefix: str = PREFIX) -> dict[str, str]:
    """A clean ``{str: str}``: numbers and booleans become text, anything else is logged and left out."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        warn_once(f"{name} must be a mapping of strings, got {type(value).__name__}; ignored")
        return {}
    clean: dict[str, str] = {}
    for key, item in value.items():
        text = _scalar_text(item)
        if not isinstance(key, str) or not key or key.startswith(reserved_prefix) or text is None:
            warn_once(f"{name} entry {key!r}: {item!r} is not a string key and value; left out")
            continue
        clean[key] = text
    return clean


def error(value: object, default_kind: str) -> tuple[str, str] | None:
    """(kind, message) from a mapping, an exception or a message."""
    if value is None:
        return None
    if isinstance(value, BaseException):
        return exception_kind(value, default_kind), f"{type(value).__name__}: {value}"[:MAX_ERROR_MESSAGE]
    if isinstance(value, str):
        return default_kind, value[:MAX_ERROR_MESSAGE]
    if isinstance(value, Mapping):
        kind = value.get("kind", default_kind)
        if kind not in ERROR_KINDS:
            warn_once(
                f"error kind must be one of {sorted(ERROR_KINDS)}, got {kind!r}; using {default_kind!r}"
            )
            kind = default_kind
        message = value.get("message", "")
        return str(kind), ("" if message is None else str(message))[:MAX_ERROR_MESSAGE]
    warn_once(f"error must be a mapping, an exception or a message, got {type(value).__name__}; ignored")
    return None


def exception_kind(exception: BaseException, default_kind: str) -> str:
    """The error kind of an exception: its own ``threadline_error_kind``, timeout, or the default."""
    declared = getattr(exception, "threadline_error_kind", None)
    if declared in ERROR_KINDS:
        return str(declared)
    if isinstance(exception, TimeoutError):
        return "timeout"
    # Client libraries have their own timeout classes (requests.Timeout, httpx.TimeoutException).
    if any(is_timeout_type(cls.__name__) for cls in type(exception).__mro__):
        return "timeout"
    return default_kind


MAX_TIMESTAMP_NS = 2**63 - 1  # OTLP carries nanoseconds as 64-bit integers


def timestamp_ns(value: object, called_ns: int | None = None) -> int:
    """Event time in Unix nanoseconds; when absent or unusable, ``called_ns`` (when it was called) or now."""
    nanoseconds = _timestamp_ns(value)
    if nanoseconds is not None and not 0 <= nanoseconds <= MAX_TIMESTAMP_NS:
        warn_once(f"timestamp {value!r} is outside 1970 to 2262; using now")
        nanoseconds = None
    if nanoseconds is not None:
        return nanoseconds
    return time.time_ns() if called_ns is None else called_ns


def _timestamp_ns(value: object) -> int | None:
    """The given time in nanoseconds; None for now (absent, or unusable and logged)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            warn_once(f"timestamp {value!r} is not RFC 3339; using now")
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            warn_once("timestamp has no time zone; taken as UTC")
            value = value.replace(tzinfo=dt.UTC)
        try:
            return int(value.timestamp() * 1_000_000) * 1000
        except (OverflowError, OSError, ValueError):
            warn_once(f"timestamp {value!r} is out of range; using now")
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value * 1_000_000_000)
    warn_once(f"timestamp must be a datetime, RFC 3339 text or Unix seconds, got {value!r}; using now")
    return None
