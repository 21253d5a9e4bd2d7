"""The business-event wire contract (README, "The collector"; docs/architecture.md, "The path of an
event"), validated with pydantic.

A batch is all-or-nothing: ``parse_batch`` either returns every event or raises ``InvalidBatch``
listing each problem by index, field and reason. The limits here are the ones README's "What the
collector refuses, and why" explains; each refusal names its field and the limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from threadline.contract.event import (
    DEFAULT_ERROR_KIND,
    MAX_ALIASES,
    MAX_AMOUNT,
    MAX_ATTEMPT,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_ERROR_MESSAGE,
    MAX_ERROR_TYPE,
    MAX_EVENTS_PER_BATCH,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_STACKTRACE,
    ErrorKind,
    Status,
)

# Event times must fit ClickHouse's DateTime64(6) and OTLP's 64-bit nanoseconds: the moments the store
# holds, from the Unix epoch (OTLP counts from it) to LATEST ("every event there is", as a bound).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2261, 12, 31, 23, 59, 59, tzinfo=dt.UTC)

_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH, pattern=_NO_CONTROL)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH, pattern=_NO_CONTROL)]
AttributeValue = Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE)]


def in_storable_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value.astimezone(dt.UTC)


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def plausible_amount(value: float) -> float:
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        bound = f"{MAX_AMOUNT:,.0f}"
        raise ValueError(f"must be between -{bound} and {bound} (no real invoice is larger)")
    return value


# Validation context: the collector's clock and how far ahead of it an event time may be. Absent,
# as when the replay importer checks rows before sending them, the collector checks it instead.
NOW = "now"
MAX_FUTURE_SKEW = "max_future_skew_s"


class EventError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ErrorKind = DEFAULT_ERROR_KIND
    message: Annotated[str, StringConstraints(max_length=MAX_ERROR_MESSAGE)] = ""
    type: Annotated[str, StringConstraints(max_length=MAX_ERROR_TYPE)] | None = None  # OTLP `exception.type`
    stacktrace: Annotated[str, StringConstraints(max_length=MAX_STACKTRACE)] | None = None


class BusinessEvent(BaseModel):
    """One business event. Unknown fields are refused, so a misspelt field never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    correlation_id: Key
    # What kind of key the correlation id is (e.g. erp.sales_order): an alias of another kind with
    # the same value is another key. Default: the kind the step's definition declares (`key:`).
    correlation_kind: Name | None = None
    workflow: Name
    step: Key
    system: Name
    timestamp: Annotated[AwareDatetime, AfterValidator(in_storable_range)]
    status: Status = "ok"
    event_id: Key | None = None
    duration_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    aliases: Annotated[dict[Name, Key], Field(max_length=MAX_ALIASES)] = Field(default_factory=dict)
    error: EventError | None = None
    attempt: Annotated[int, Field(ge=1, le=MAX_ATTEMPT)] | None = None
    amount: Annotated[float, Field(allow_inf_nan=False), AfterValidator(plausible_amount)] | None = None
    currency: Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    attributes: Annotated[dict[Key, AttributeValue], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=dict
    )
    trace_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    span_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] | None = None

    @field_validator("timestamp")
    @classmethod
    def _not_in_the_future(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        # Queries answer "as of now": an event stamped ahead of the clock would be acknowledged and
        # then found by no answer until its time comes, so it is refused while the sender can fix it.
        context = info.context or {}
        if NOW not in context:
            return value
        ahead = (value - context[NOW]).total_seconds()
        if ahead > context[MAX_FUTURE_SKEW]:
            raise ValueError(
                f"is {_seconds(ahead)} ahead of the collector's clock; at most "
                f"{_seconds(context[MAX_FUTURE_SKEW])} is accepted (THREADLINE_MAX_FUTURE_SKEW): "
                "check the sender's clock and time zone"
            )
        return value

    @model_validator(mode="after")
    def _default_event_id(self) -> BusinessEvent:
        # Without an event_id, the same event sent twice must still count once: derive the id
        # from the content, so an identical retry gets the identical id.
        if self.event_id is None:
            # (fields added later count only when set: the same event keeps the same id across versions)
            unset = {"correlation_kind"} if self.correlation_kind is None else set()
            content = self.model_dump(mode="json", exclude={"event_id", *unset})
            error = content["error"]
            if error is not None:
                content["error"] = {name: value for name, value in error.items() if value is not None}
            digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
            object.__setattr__(self, "event_id", "sha256:" + digest[:40])
        return self

    @model_validator(mode="after")
    def _default_error(self) -> BusinessEvent:
        # An error always has a kind, so it is grouped and counted like any other (GET /api/exceptions).
        if self.status == "error" and self.error is None:
            object.__setattr__(self, "error", EventError())
        return self


def _seconds(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} seconds"


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[BusinessEvent], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


class Problem(BaseModel):
    """One reason a batch was refused (or, as an ingest warning, a stored event cannot be judged)."""

    index: int | None = None
    field: str
    reason: str


class InvalidBatch(ValueError):
    def __init__(self, problems: Sequence[Problem], events: int = 0) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)
        self.events = events  # how many events the refused batch carried; 0 if the body is not a batch


def problems_of(error: ValidationError, prefix: Sequence[str | int] = ()) -> list[Problem]:
    """Pydantic's errors as (index, field, reason): ``events.3.timestamp`` → index 3, ``timestamp``."""
    problems = []
    for item in error.errors(include_url=False):
        location = [*prefix, *item["loc"]]
        index = None
        if len(location) >= 2 and location[0] == "events" and isinstance(location[1], int):
            index, location = location[1], location[2:]
        field = ".".join(str(part) for part in location) or ("event" if index is not None else "body")
        problems.append(Problem(index=index, field=field, reason=_reason(item)))
    return problems


# Pydantic's words where they would name our classes ("a valid dictionary or instance of EventBatch").
_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of a business event",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}


def _reason(item: Mapping[str, Any]) -> str:
    if item["type"] in _REASONS:
        return _REASONS[item["type"]]
    message = str(item["msg"])
    for prefix in ("Value error, ", "Input "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def clock(now: dt.datetime, max_future_skew_s: float) -> dict[str, Any]:
    """The validation context refusing event times more than ``max_future_skew_s`` after ``now``."""
    return {NOW: now, MAX_FUTURE_SKEW: max_future_skew_s}


# orjson's own bound (not configurable): a document nested deeper does not parse.
JSON_MAX_DEPTH = 1024


def not_json(error: orjson.JSONDecodeError) -> str:
    """Why a body does not parse as JSON, naming the nesting limit when that is why."""
    if "depth limit" in str(error):
        return f"nests arrays and objects more than {JSON_MAX_DEPTH} levels deep"
    return f"is not valid JSON: {error}"


def parse_batch(body: bytes, context: Mapping[str, Any] | None = None) -> list[BusinessEvent]:
    """Events of a ``{"events": [...]}`` JSON body; raises ``InvalidBatch`` naming every problem.

    ``context``: ``clock(...)`` to refuse events stamped in the future.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidBatch([Problem(field="body", reason=not_json(error))]) from None
    if isinstance(document, list):  # a bare list of events is accepted too
        document = {"events": document}
    try:
        return EventBatch.model_validate(document, context=context).events
    except ValidationError as error:
        events = document.get("events") if isinstance(document, dict) else None
        raise InvalidBatch(problems_of(error), len(events) if isinstance(events, list) else 0) from None


def validate_event(fields: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> BusinessEvent:
    """One event from fields gathered elsewhere (an OTLP span, a replayed row); raises ValidationError."""
    return BusinessEvent.model_validate(fields, context=context)
