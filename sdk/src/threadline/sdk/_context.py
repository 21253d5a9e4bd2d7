"""The correlation id in context: W3C baggage, carried across threads of control and processes.

``correlate`` puts the correlation id and its aliases into the OpenTelemetry context (so every
event inside picks them up, in this thread and in asyncio tasks created inside). ``inject`` writes
them, with the W3C trace context, into a carrier (HTTP headers, queue message headers); ``extract``
reads them back on the other side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from threadline.contract.attributes import ALIAS_PREFIX, CORRELATION_ID

from ._arguments import warn_once

logger = logging.getLogger("threadline.sdk")


_propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def current(ctx: context.Context | None = None) -> tuple[str | None, dict[str, str]]:
    """The correlation id and aliases in ``ctx`` (default: the current context)."""
    entries = baggage.get_all(ctx)
    if not entries:
        return None, {}
    correlation_id = entries.get(CORRELATION_ID)
    aliases = {
        key[len(ALIAS_PREFIX) :]: str(value) for key, value in entries.items() if key.startswith(ALIAS_PREFIX)
    }
    return (str(correlation_id) if correlation_id is not None else None), aliases


def _with_correlation(
    ctx: context.Context, correlation_id: str, aliases: Mapping[str, str]
) -> context.Context:
    ctx = baggage.set_baggage(CORRELATION_ID, correlation_id, ctx)
    for kind, value in aliases.items():
        ctx = baggage.set_baggage(ALIAS_PREFIX + kind, value, ctx)
    return ctx


@contextmanager
def attached(ctx: context.Context | None) -> Iterator[None]:
    token = context.attach(ctx) if ctx is not None else None
    try:
        yield
    finally:
        if token is not None:
            try:
                context.detach(token)
            except Exception:
                logger.debug("threadline: could not detach context", exc_info=True)


class Correlation:
    """A correlation id (with aliases) that can be entered as a context: ``with correlation: ...``."""

    def __init__(
        self, correlation_id: str | None, aliases: Mapping[str, str], ctx: context.Context | None
    ) -> None:
        self.correlation_id = correlation_id
        self.aliases = dict(aliases)
        self._context = ctx
        self._scopes: list[Any] = []

    def __enter__(self) -> Correlation:
        scope = attached(self._context)
        scope.__enter__()
        self._scopes.append(scope)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._scopes:
            self._scopes.pop().__exit__(None, None, None)

    async def __aenter__(self) -> Correlation:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    def __repr__(self) -> str:
        return f"Correlation({self.correlation_id!r}, aliases={self.aliases!r})"


def correlate(correlation_id: object, **aliases: object) -> Correlation:
    if isinstance(correlation_id, int) and not isinstance(correlation_id, bool):
        correlation_id = str(correlation_id)
    if not isinstance(correlation_id, str) or not correlation_id.strip():
        warn_once(f"correlate() needs a non-empty string correlation id, got {correlation_id!r}; ignored")
        return Correlation(None, {}, None)
    clean: dict[str, str] = {}
    for kind, value in aliases.items():
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            clean[kind] = str(value)
        else:
            warn_once(f"correlate() alias {kind!r} must be a non-empty string, got {value!r}; ignored")
    return Correlation(correlation_id, clean, _with_correlation(context.get_current(), correlation_id, clean))


class _CaseInsensitiveGetter(Getter[Mapping[str, Any]]):
    """HTTP header names are case-insensitive, and queue headers may hold bytes."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        for name, value in carrier.items():
            if isinstance(name, str) and name.lower() == key:
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                if isinstance(value, list | tuple):
                    return [str(item) for item in value]
                return [str(value)]
        return None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [str(name) for name in carrier]


_getter = _CaseInsensitiveGetter()


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the trace context and the correlation baggage of the current context into ``carrier``."""
    try:
        _propagator.inject(carrier)
    except Exception:
        warn_once(
            f"inject() needs a mutable mapping of headers, got {type(carrier).__name__}; nothing injected"
        )
    return carrier


def extract(carrier: Mapping[str, Any]) -> Correlation:
    """Read the correlation id and trace context from ``carrier``; enter the result to use them."""
    try:
        ctx = _propagator.extract(carrier, getter=_getter)
    except Exception:
        warn_once(f"extract() needs a mapping of headers, got {type(carrier).__name__}; nothing extracted")
        return Correlation(None, {}, None)
    correlation_id, aliases = current(ctx)
    return Correlation(correlation_id, aliases, ctx)
