"""CloudEvents into business events (README, "CloudEvents").

The official SDK (``cloudevents``, its ``core`` API) reads each event as the HTTP binding says:
structured mode (the event as a JSON object), binary mode (attributes in percent-encoded ``ce-*``
headers, the data in the body) and, one structured event per element, batch mode (a JSON array; the
SDK has no batch reader). It fills in an absent ``id`` and ``time`` itself, so the attributes a
CloudEvent requires are checked here first: a sender that forgets its ``id`` must hear so, not have
its re-deliveries counted twice under ids the SDK made up.

An event carrying the BAM extension (``bamtxid``, ``bampid``, ``bamptxsid``, ``bamptxsstatus``) is a
business event as it stands; any other goes through the webhook mappings of the ``cloudevents``
source (``webhooks.py``), which read it in its structured form. Either way its event id is made of
its ``source`` and ``id``, which the specification makes unique: a re-delivery counts once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import CE_PREFIX, HTTPMessage, from_binary
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from threadline.contract.event import MAX_EVENTS_PER_BATCH

from ..schema import BusinessEvent, InvalidBatch, Problem, not_json, problems_of, validate_event
from . import webhooks

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
# The webhook mappings that read CloudEvents without the BAM extension: this source's, in the file.
MAPPINGS_SOURCE = "cloudevents"

# The BAM extension's attributes, by the event field each one is.
BAM_FIELDS = {
    "correlation_id": "bamtxid",
    "workflow": "bampid",
    "step": "bamptxsid",
    "status": "bamptxsstatus",
}
# The CloudEvent attribute each field of a BAM event comes from, which a refusal names.
ATTRIBUTE_OF = {**BAM_FIELDS, "system": "source", "timestamp": "time"}
# The BAM extension leaves step statuses to producer and consumer; its examples, and ours, are read.
BAM_STATUSES = {"success": "ok", "failure": "error", "waiting": "pending"}

_FORMAT = JSONFormat()


@dataclass(frozen=True)
class Received:
    """One CloudEvent as sent, in its structured form (the attributes and ``data``)."""

    index: int | None  # its place in a batch; None for the one event of a structured or binary request
    attributes: dict[str, Any]


def read(content_type: str, headers: Mapping[str, str], body: bytes) -> list[Received]:
    """The CloudEvents of a request in any of the three modes; raises InvalidBatch naming each
    problem (by index in a batch) and the attribute."""
    if content_type in (STRUCTURED, BATCH):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InvalidBatch([Problem(field="body", reason=not_json(error))]) from None
        if content_type == STRUCTURED:
            return [_structured(document, None)]
        if not isinstance(document, list) or not document:
            raise InvalidBatch(
                [Problem(field="body", reason="must be a JSON array of CloudEvents (batch mode)")]
            )
        if len(document) > MAX_EVENTS_PER_BATCH:
            reason = f"carries {len(document)} CloudEvents; at most {MAX_EVENTS_PER_BATCH} per request"
            raise InvalidBatch([Problem(field="body", reason=reason)], len(document))
        received, problems = [], []
        for index, item in enumerate(document):
            try:
                received.append(_structured(item, index))
            except InvalidBatch as invalid:
                problems.extend(invalid.problems)
        if problems:
            raise InvalidBatch(problems, len(document))
        return received
    return [_binary(headers, body)]


def is_binary(headers: Mapping[str, str]) -> bool:
    return any(name.lower().startswith(CE_PREFIX) for name in headers)


def _structured(item: object, index: int | None) -> Received:
    if not isinstance(item, dict):
        raise InvalidBatch(
            [Problem(index=index, field="event", reason="must be a JSON object (a CloudEvent)")]
        )
    _require(item, index)
    if "time" in item and not isinstance(item["time"], str):
        raise InvalidBatch([Problem(index=index, field="time", reason="must be an RFC 3339 time, as text")])
    return Received(index, _attributes(lambda: _FORMAT.read(None, orjson.dumps(item)), index))


def _binary(headers: Mapping[str, str], body: bytes) -> Received:
    attributes = {name.lower()[len(CE_PREFIX) :]: value for name, value in headers.items()}
    _require(attributes, None, prefix=CE_PREFIX)
    message = HTTPMessage(headers=dict(headers), body=body)
    return Received(None, _attributes(lambda: from_binary(message, _FORMAT), None))


def _require(attributes: Mapping[str, Any], index: int | None, prefix: str = "") -> None:
    missing = [name for name in REQUIRED_ATTRIBUTES if attributes.get(name) in (None, "")]
    if missing:
        raise InvalidBatch(
            [
                Problem(
                    index=index, field=prefix + name, reason="is required (a CloudEvents context attribute)"
                )
                for name in missing
            ]
        )


def _attributes(parse: Callable[[], BaseCloudEvent], index: int | None) -> dict[str, Any]:
    """The parsed event's attributes and data, as its structured form has them."""
    try:
        event = parse()
    except CloudEventValidationError as error:
        raise InvalidBatch(
            [
                Problem(index=index, field=name, reason=str(reasons[0]))
                for name, reasons in error.errors.items()
            ]
        ) from None
    except ValueError as error:  # the only attribute the SDK parses is `time` (RFC 3339)
        raise InvalidBatch(
            [Problem(index=index, field="time", reason=f"is not an RFC 3339 time: {error}")]
        ) from None
    attributes = dict(event.get_attributes())
    data = event.get_data()
    if isinstance(data, bytes):
        attributes["data_base64"] = base64.b64encode(data).decode()
    elif data is not None:
        attributes["data"] = data
    return attributes


def event_id(attributes: Mapping[str, Any]) -> str:
    """``source`` + ``id`` identify a CloudEvent (the specification's own rule), in a key of fixed
    length whatever their size, unambiguous however either is spelt."""
    digest = hashlib.sha256(orjson.dumps([attributes["source"], attributes["id"]])).hexdigest()
    return "ce:" + digest[:40]


def convert(
    received: Sequence[Received],
    mappings: Sequence[webhooks.WebhookMapping],
    headers: Mapping[str, str],
    context: Mapping[str, Any],
) -> list[BusinessEvent]:
    """Business events of the CloudEvents, all or none: raises InvalidBatch (a value the contract
    refuses) or webhooks.NoMappingMatched (an event neither BAM nor matched), problems by index."""
    events: list[BusinessEvent] = []
    invalid: list[Problem] = []
    unmatched: list[Problem] = []
    for item in received:
        index = item.index
        try:
            if "bamtxid" in item.attributes:
                events.append(_bam_event(item.attributes, context))
            else:
                document = webhooks.request_document(_jsonable(item.attributes), headers)
                defaults = {"event_id": event_id(item.attributes)}
                match = webhooks.first_match(MAPPINGS_SOURCE, mappings, document, context, defaults)
                events.append(match.event)
        except (InvalidBatch, webhooks.InvalidMapping) as error:
            invalid.extend(problem.model_copy(update={"index": index}) for problem in error.problems)
        except webhooks.NoMappingMatched as error:
            reason = "has no BAM extension (bamtxid), and no mapping of the cloudevents source matches it"
            unmatched.append(Problem(index=index, field="bamtxid", reason=reason))
            unmatched.extend(problem.model_copy(update={"index": index}) for problem in error.problems)
    if invalid:
        raise InvalidBatch(invalid, len(received))
    if unmatched:
        raise webhooks.NoMappingMatched(MAPPINGS_SOURCE, [mapping.name for mapping in mappings], unmatched)
    return events


def _bam_event(attributes: Mapping[str, Any], context: Mapping[str, Any]) -> BusinessEvent:
    fields: dict[str, Any] = {
        field: attributes[name] for field, name in BAM_FIELDS.items() if attributes.get(name) is not None
    }
    if isinstance(fields.get("status"), str):
        fields["status"] = BAM_STATUSES.get(fields["status"].lower(), fields["status"].lower())
    fields |= {
        "system": attributes["source"],
        "timestamp": attributes["time"],  # optional in a CloudEvent: the SDK gives one its arrival
        "event_id": event_id(attributes),
        "attributes": {
            f"cloudevents.{name}": str(attributes[name])
            for name in ("type", "id", "source", "subject", "bamptxid", "bamptxcompleted")
            if attributes.get(name) is not None
        },
    }
    try:
        return validate_event(fields, context)
    except ValidationError as error:
        raise InvalidBatch(
            [
                problem.model_copy(update={"field": ATTRIBUTE_OF.get(problem.field, problem.field)})
                for problem in problems_of(error)
            ]
        ) from None


def _jsonable(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The structured form as JSON has it (``time`` as RFC 3339 text), for the mappings to read."""
    return {
        name: value.isoformat() if isinstance(value, dt.datetime) else value
        for name, value in attributes.items()
    }
