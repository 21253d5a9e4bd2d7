"""The SDK at run time: a private tracer provider whose spans are business events.

The provider is never installed globally, so an application's own TracerProvider stays as it is;
business events are started in the current context, so inside one of the application's spans they
join its trace (same trace id, parent span id) and the technical trace can be found from the event.

``sdk.event()`` costs its caller only a ``Call``: the arguments, the time and the context. Checks,
redaction, ids and the span are made from it on the delivery thread (``Client.build``), in the
context recorded at the call, so the event still joins the caller's trace and correlation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from contextvars import Token
from typing import Any, Literal, NamedTuple

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Status, StatusCode

from threadline.contract.attributes import (
    ALIAS_PREFIX,
    AMOUNT,
    ATTEMPT,
    CORRELATION_ID,
    CURRENCY,
    DURATION_MS,
    ERROR_KIND,
    ERROR_MESSAGE,
    EVENT_ID,
    STATUS,
    STEP,
    SYSTEM,
    WORKFLOW,
)
from threadline.contract.event import MAX_ATTRIBUTE_VALUE
from threadline.contract.redaction import Redactor

from . import _arguments as check
from . import _context
from ._ids import uuid7
from ._pipeline import DeliveryProcessor
from ._settings import Settings

logger = logging.getLogger("threadline.sdk")


class Call(NamedTuple):
    """One ``sdk.event()`` call as its caller's thread recorded it, arguments unchecked."""

    workflow: object
    step: object
    correlation_id: object
    status: object
    event_id: object
    aliases: object  # mappings are copies: the caller may change its own after the call
    amount: object
    currency: object
    error: object
    attempt: object
    attributes: object
    timestamp: object
    called_ns: int
    otel_context: context.Context  # the correlation and the span current at the call
    site: tuple[str, int]  # the integration's line, where a bad argument is reported


class Client:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redactor = Redactor(settings.redact_keys, settings.redact_salt)
        self.processor: DeliveryProcessor[Call] = DeliveryProcessor(settings, self.build)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service}),
            sampler=ALWAYS_ON,  # business events are never sampled away, whatever the trace's sampling
            span_limits=SpanLimits(max_span_attributes=512, max_attribute_length=MAX_ATTRIBUTE_VALUE),
            shutdown_on_exit=False,
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("threadline.sdk")

    def attributes(
        self,
        function: str,
        workflow: object,
        step: object,
        correlation_id: object,
        status: object,
        event_id: object,
        aliases: object,
        amount: object,
        currency: object,
        error: object,
        attempt: object,
        attributes: object,
        ctx: context.Context | None = None,
    ) -> dict[str, Any] | None:
        """The span attributes of one business event (correlated by ``ctx``, default the current
        context), or None when a required field is unusable."""
        workflow_name = check.required_text("workflow", workflow, function)
        step_name = check.required_text("step", step, function)
        if workflow_name is None or step_name is None:
            return None
        context_id, context_aliases = _context.current(ctx)
        key = check.correlation_id(context_id if correlation_id is None else correlation_id, function)
        if key is None:
            return None
        failure = check.error(error, self.settings.default_error_kind)
        result: dict[str, Any] = {
            CORRELATION_ID: key,
            WORKFLOW: workflow_name,
            STEP: step_name,
            SYSTEM: self.settings.system,
            STATUS: check.status(status, failure is not None),
            EVENT_ID: check.optional_text("event_id", event_id) or uuid7(),
        }
        if failure is not None:
            if result[STATUS] == "ok":
                result[STATUS] = "error"
            result[ERROR_KIND], result[ERROR_MESSAGE] = failure
        known_aliases = context_aliases if key == context_id else {}
        announced = {**known_aliases, **check.string_map("aliases", aliases)}
        for kind, value in self.redactor.redact(announced).items():  # a contact_email alias is hashed
            result[ALIAS_PREFIX + kind] = value
        if (figure := check.amount(amount)) is not None:
            result[AMOUNT] = figure
        if (code := check.currency(currency)) is not None:
            result[CURRENCY] = code
        if (number := check.attempt(attempt)) is not None:
            result[ATTEMPT] = number
        extra = check.string_map("attributes", attributes)
        if extra:
            result.update(self.redactor.redact_texts(extra))
        return result

    def emit(
        self,
        name: str,
        attributes: dict[str, Any],
        start_ns: int,
        end_ns: int | None = None,
        parent: context.Context | None = None,
    ) -> None:
        """A finished span; a child of the span current in ``parent`` (default: the current context)."""
        span = self.tracer.start_span(name, context=parent, start_time=start_ns, attributes=attributes)
        if attributes[STATUS] == "error":
            span.set_status(Status(StatusCode.ERROR, attributes.get(ERROR_MESSAGE)))
        span.end(end_time=start_ns if end_ns is None else end_ns)

    def build(self, calls: Sequence[Call]) -> None:
        """The business events of recorded ``sdk.event()`` calls, as finished spans; never raises."""
        for call in calls:
            try:
                with check.reported_at(call.site):
                    attributes = self.attributes(
                        "event",
                        call.workflow,
                        call.step,
                        call.correlation_id,
                        call.status,
                        call.event_id,
                        call.aliases,
                        call.amount,
                        call.currency,
                        call.error,
                        call.attempt,
                        call.attributes,
                        call.otel_context,
                    )
                    if attributes is not None:
                        start_ns = check.timestamp_ns(call.timestamp, call.called_ns)
                        self.emit(attributes[STEP], attributes, start_ns, parent=call.otel_context)
            except Exception:
                logger.exception("threadline: event() failed; the event was not recorded")

    def shutdown(self, timeout_s: float | None = None) -> None:
        self.processor.shutdown(timeout_s)


class Step:
    """``with sdk.step(...)``: one business event, timed from entry to exit.

    An exception from the block marks the event ``status="error"`` with its error kind and is
    re-raised unchanged; the SDK's own failures are logged and never reach the block.
    """

    def __init__(
        self, client: Client | None, workflow: object, step: object, fields: Mapping[str, Any]
    ) -> None:
        self._client = client
        self._workflow = workflow
        self._step = step
        self._fields = dict(fields)
        self._attributes: dict[str, Any] | None = None
        self._span: Any = None
        self._token: Token[context.Context] | None = None
        self._entry_context: context.Context | None = None
        self._start_ns = 0

    # Inside the block the integration may refine what the event says.
    def set_status(self, status: str, error: object = None) -> None:
        self._fields["status"] = status
        if error is not None:
            self._fields["error"] = error

    def set_attribute(self, key: str, value: object) -> None:
        attributes = self._fields.get("attributes")
        self._fields["attributes"] = {**(attributes if isinstance(attributes, Mapping) else {}), key: value}

    def add_alias(self, kind: str, value: str) -> None:
        aliases = self._fields.get("aliases")
        self._fields["aliases"] = {**(aliases if isinstance(aliases, Mapping) else {}), kind: value}

    def _resolve(self) -> dict[str, Any] | None:
        assert self._client is not None
        f = self._fields
        return self._client.attributes(
            "step",
            self._workflow,
            self._step,
            f.get("correlation_id"),
            f.get("status", "ok"),
            f.get("event_id"),
            f.get("aliases"),
            f.get("amount"),
            f.get("currency"),
            f.get("error"),
            f.get("attempt"),
            f.get("attributes"),
        )

    def __enter__(self) -> Step:
        try:
            if self._client is None:
                return self
            self._entry_context = context.get_current()
            self._attributes = self._resolve()  # checked on entry, so a bad call is reported at once
            if self._attributes is None:
                return self
            self._fields["event_id"] = self._attributes[EVENT_ID]
            self._start_ns = time.time_ns()
            self._span = self._client.tracer.start_span(str(self._step), start_time=self._start_ns)
            self._token = context.attach(trace.set_span_in_context(self._span))
        except Exception:
            logger.exception("threadline: could not start a step")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        try:
            self._finish(exc)
        except Exception:
            logger.exception("threadline: could not record a step")
        return False  # never swallow the integration's exception

    async def __aenter__(self) -> Step:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def _finish(self, exc: BaseException | None) -> None:
        if self._token is not None:
            context.detach(self._token)
            self._token = None
        if self._span is None or self._client is None:
            return
        span, self._span = self._span, None
        if exc is not None:
            self._fields["status"] = "error"
            self._fields["error"] = exc
        with _context.attached(self._entry_context):  # the correlation in force when the step began
            attributes = self._resolve() or self._attributes or {}
        end_ns = time.time_ns()
        attributes[DURATION_MS] = round((end_ns - self._start_ns) / 1e6, 3)
        span.set_attributes(attributes)
        if attributes.get(STATUS) == "error":
            span.set_status(Status(StatusCode.ERROR, attributes.get(ERROR_MESSAGE)))
        span.end(end_time=end_ns)
