"""Threadline SDK: business events from integration code, on OpenTelemetry.

    from threadline import sdk

    sdk.configure(service="order-sync", system="netsuite")
    with sdk.correlate("OPP-1042", **{"erp.sales_order": "SO-88812"}):
        with sdk.step("quote-to-cash", "erp.order.created", amount=1200.0, currency="EUR"):
            create_order()
        sdk.event("quote-to-cash", "erp.customer.validated")

Nothing here raises into, or blocks, the integration: bad arguments are logged once per call site,
delivery happens on a background thread, and what cannot be delivered waits in an on-disk spool.
This package imports nothing but OpenTelemetry and the standard library.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry.context import get_current as _current_context

from . import _arguments as _check
from ._client import Call, Client, Step
from ._context import Correlation
from ._context import correlate as _correlate
from ._context import extract as _extract
from ._context import inject as _inject
from ._settings import resolve as _resolve_settings

__all__ = [
    "Correlation",
    "Step",
    "configure",
    "correlate",
    "event",
    "extract",
    "flush",
    "inject",
    "shutdown",
    "step",
]

logger = logging.getLogger("threadline.sdk")

_lock = threading.RLock()
_client: Client | None = None
_shut_down = False
_atexit_registered = False


def configure(
    service: str | None = None,
    system: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    redact_keys: tuple[str, ...] | list[str] = (),
    spool_dir: str | os.PathLike[str] | None = None,
    *,
    default_error_kind: str | None = None,
) -> None:
    """Set up (or set up again) the SDK. Every argument falls back to its environment variable.

    ``service`` ← ``OTEL_SERVICE_NAME``; ``system`` ← ``THREADLINE_SYSTEM`` (default: the service);
    ``endpoint`` ← ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``);
    ``api_key`` ← ``THREADLINE_API_KEY``; ``redact_keys`` adds to ``THREADLINE_REDACT_KEYS`` and the
    built-in list; ``spool_dir`` ← ``THREADLINE_SPOOL_DIR`` (default under the user's cache dir);
    ``default_error_kind`` ← ``THREADLINE_DEFAULT_ERROR_KIND`` (default ``transient``).
    Spooled events of an earlier process in the same spool directory are sent in the background.
    """
    global _client, _shut_down
    try:
        settings = _resolve_settings(
            service, system, endpoint, api_key, redact_keys, spool_dir, default_error_kind
        )
        with _lock:
            previous, _client = _client, None
            if previous is not None:
                previous.shutdown()
            _client = Client(settings)
            _shut_down = False
            _register_exit_hook()
    except Exception:
        logger.exception("threadline: configure() failed; business events are not sent")


def _current_client() -> Client | None:
    """The configured client; configured from the environment on first use."""
    client = _client
    if client is not None or _shut_down:
        return client
    with _lock:
        if _client is None and not _shut_down:
            configure()
        return _client


def event(
    workflow: str,
    step: str,
    *,
    correlation_id: str | int | None = None,
    status: str = "ok",
    event_id: str | None = None,
    aliases: Mapping[str, str] | None = None,
    amount: float | None = None,
    currency: str | None = None,
    error: Mapping[str, str] | BaseException | str | None = None,
    attempt: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    timestamp: Any = None,
) -> None:
    """Record one business event. ``correlation_id`` defaults to the one of ``correlate()``.

    The caller's thread only records the call; it is checked and sent from the delivery thread.
    """
    try:
        client = _current_client()
        if client is None:
            return
        caller = sys._getframe(1)
        client.processor.defer(
            Call(
                workflow,
                step,
                correlation_id,
                status,
                event_id,
                _check.snapshot(aliases),
                amount,
                currency,
                _check.snapshot(error),
                attempt,
                _check.snapshot(attributes),
                timestamp,
                time.time_ns(),
                _current_context(),
                (caller.f_code.co_filename, caller.f_lineno),
            )
        )
    except Exception:
        logger.exception("threadline: event() failed; the event was not recorded")


def step(
    workflow: str,
    step: str,
    correlation_id: str | int | None = None,
    *,
    status: str = "ok",
    event_id: str | None = None,
    aliases: Mapping[str, str] | None = None,
    amount: float | None = None,
    currency: str | None = None,
    error: Mapping[str, str] | BaseException | str | None = None,
    attempt: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Step:
    """``with sdk.step(...) as s:``: a business event timed over the block.

    An exception from the block marks it ``status="error"`` (kind ``timeout`` for timeouts, else the
    configured default) and is re-raised unchanged. ``s.set_status()``, ``s.set_attribute()`` and
    ``s.add_alias()`` refine the event from inside the block.
    """
    fields = {
        "correlation_id": correlation_id,
        "status": status,
        "event_id": event_id,
        "aliases": aliases,
        "amount": amount,
        "currency": currency,
        "error": error,
        "attempt": attempt,
        "attributes": attributes,
    }
    try:
        return Step(_current_client(), workflow, step, fields)
    except Exception:
        logger.exception("threadline: step() failed; the step is not recorded")
        return Step(None, workflow, step, fields)


def correlate(correlation_id: str | int, **aliases: str) -> Correlation:
    """``with sdk.correlate("OPP-1042", **{"erp.sales_order": "SO-88812"}):`` every event inside,
    and every ``inject()``, carries this correlation id and these aliases (W3C baggage)."""
    try:
        return _correlate(correlation_id, **aliases)
    except Exception:
        logger.exception("threadline: correlate() failed")
        return Correlation(None, {}, None)


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the correlation (``baggage``) and trace context (``traceparent``) headers into ``carrier``."""
    return _inject(carrier)


def extract(carrier: Mapping[str, Any]) -> Correlation:
    """Read what ``inject`` wrote; ``with sdk.extract(request.headers):`` continues the transaction."""
    return _extract(carrier)


def flush(timeout_s: float = 10.0) -> bool:
    """Deliver every queued and spooled event; True if all reached the collector within ``timeout_s``."""
    try:
        client = _client
        return True if client is None else client.processor.flush(timeout_s)
    except Exception:
        logger.exception("threadline: flush() failed")
        return False


def shutdown(timeout_s: float | None = None) -> None:
    """Deliver what is queued (up to ``timeout_s``), spool the rest and stop the background thread."""
    global _client, _shut_down
    try:
        with _lock:
            client, _client = _client, None
            _shut_down = True
        if client is not None:
            started = time.monotonic()
            client.shutdown(timeout_s)
            logger.debug("threadline: shut down in %.3fs", time.monotonic() - started)
    except Exception:
        logger.exception("threadline: shutdown() failed")


def _register_exit_hook() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True


def _restart_in_child() -> None:
    """After fork the background thread exists only in the parent: give the child its own."""
    global _client, _lock
    _lock = threading.RLock()
    if _client is not None:
        _client = Client(_client.settings)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_in_child)
