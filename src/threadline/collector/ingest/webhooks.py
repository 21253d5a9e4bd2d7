"""Webhook mappings: a SaaS sender's own webhook body becomes a business event without code
(README, "Webhooks").

The mappings file (``THREADLINE_WEBHOOKS``) names each sender (a *source*, the ``{source}`` of
``POST /v1/webhooks/{source}``), how it signs, and its mappings. A mapping picks the event's fields
out of ``{"body": <the JSON body>, "headers": {<lower-case name>: <value>}}`` with JMESPath
expressions (the ``jmespath`` library: a specified language with a maintained implementation, so no
home-made one); its optional ``when`` selects the bodies it applies to. The first mapping whose
``when`` holds makes the event, which is then checked, redacted and stored as ``POST /v1/events``
stores one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jmespath
import orjson
import yaml
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from ..schema import BusinessEvent, Problem, problems_of, validate_event

# ISO 4217 currencies whose minor unit is not a hundredth (Stripe's zero- and three-decimal lists):
# senders such as Stripe send amounts in minor units, 4800 for USD 48.00 but 4800 for JPY 4800.
MINOR_UNIT_DIGITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "UYI", "VND",
         "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}  # fmt: skip
DEFAULT_MINOR_UNIT_DIGITS = 2

# Stripe's libraries refuse a signature older than this (seconds), against replayed deliveries.
STRIPE_TOLERANCE_S = 300


class _Functions(functions.Functions):
    """JMESPath's built-in functions, and the conversions senders' bodies need."""

    @functions.signature({"types": ["number"]}, {"types": ["string"]})
    def _func_from_minor_units(self, amount: float, currency: str) -> float:
        """``from_minor_units(amount_paid, currency)``: 4800 USD cents → 48.0 (JPY has no cents)."""
        return amount / 10 ** MINOR_UNIT_DIGITS.get(currency.upper(), DEFAULT_MINOR_UNIT_DIGITS)


_CUSTOM_FUNCTIONS = _Functions()
_OPTIONS = jmespath.Options(custom_functions=_CUSTOM_FUNCTIONS)
_FUNCTIONS = frozenset(_CUSTOM_FUNCTIONS.FUNCTION_TABLE)


class WebhookError(ValueError):
    """A mappings file the collector cannot start with; ``str()`` is one line naming the file, the
    source, the mapping and the field."""


class SignatureError(ValueError):
    """A delivery whose signature does not verify; ``str()`` says why."""


@dataclass(frozen=True)
class Expression:
    """A compiled JMESPath expression and its text (to name it in answers)."""

    text: str
    parsed: ParsedResult

    def search(self, document: object) -> Any:
        return self.parsed.search(document, options=_OPTIONS)


def _compile(value: object) -> object:
    if not isinstance(value, str):
        return value  # pydantic says what it should be
    try:
        parsed = jmespath.compile(value)
    except JMESPathError as error:
        # Its message shows the expression over three lines, with a caret; the first one says why.
        raise ValueError(f"{value!r} is not a JMESPath expression: {str(error).splitlines()[0]}") from None
    unknown = sorted(set(_function_names(parsed.parsed)) - _FUNCTIONS)
    if unknown:
        raise ValueError(f"{value!r} calls unknown function(s) {', '.join(unknown)}")
    return Expression(value, parsed)


def _function_names(node: Mapping[str, Any]) -> Iterator[str]:
    if node.get("type") == "function_expression":
        yield node["value"]
    for child in node.get("children", ()):
        if isinstance(child, Mapping):
            yield from _function_names(child)


JMESPath = Annotated[
    Expression,
    BeforeValidator(_compile),
    PlainSerializer(lambda expression: expression.text, return_type=str),
    WithJsonSchema({"type": "string"}),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")]

# The event fields that are text keys: a whole number found for one is taken as its text.
KEY_FIELDS = ("correlation_id", "correlation_kind", "workflow", "step", "system", "status", "event_id")


class EventExpressions(BaseModel):
    """Where each field of the business event comes from (DESIGN.md, "Business event")."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    correlation_id: JMESPath
    workflow: JMESPath
    step: JMESPath
    system: JMESPath
    timestamp: JMESPath  # RFC 3339 text, or Unix seconds (Stripe's `created`)
    correlation_kind: JMESPath | None = None
    status: JMESPath | None = None
    event_id: JMESPath | None = None  # the sender's delivery or event id: a re-delivery counts once
    amount: JMESPath | None = None
    currency: JMESPath | None = None
    aliases: dict[str, JMESPath] = Field(default_factory=dict)  # kind -> expression
    attributes: dict[str, JMESPath] = Field(default_factory=dict)


# The fields a mapping must give (those the event contract requires).
REQUIRED_FIELDS = frozenset(
    name for name, field in EventExpressions.model_fields.items() if field.is_required()
)


class WebhookMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: Name
    when: JMESPath | None = None  # a predicate: the mapping applies where it is true (JMESPath truth)
    event: EventExpressions


class Signature(BaseModel):
    """How the sender signs its deliveries, and the variable holding the shared secret."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["stripe"]
    secret_env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    secret: SecretStr = Field(default=SecretStr(""), exclude=True)  # read from secret_env at load

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Raises SignatureError unless the delivery is signed with the secret."""
        verify_stripe(headers.get("stripe-signature"), body, self.secret.get_secret_value(), now)


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    signature: Signature | None = None
    mappings: Annotated[list[WebhookMapping], Field(min_length=1)]


class WebhooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    sources: dict[Name, Source] = Field(default_factory=dict)


class NoMappingMatched(ValueError):
    """No mapping of the source applies to the body; ``problems`` says why, mapping by mapping."""

    def __init__(self, source: str, tried: Sequence[str], problems: Sequence[Problem]) -> None:
        super().__init__(
            f"no mapping of source {source!r} matches this body (tried {', '.join(tried) or 'none'})"
        )
        self.problems = list(problems)


class InvalidMapping(ValueError):
    """The matching mapping's expressions gave a value the event contract refuses."""

    def __init__(self, mapping: str, problems: Sequence[Problem]) -> None:
        super().__init__(f"mapping {mapping!r} made an invalid event ({len(problems)} problem(s))")
        self.problems = list(problems)


@dataclass(frozen=True)
class Match:
    mapping: str
    event: BusinessEvent


def request_document(body: object, headers: Mapping[str, str]) -> dict[str, Any]:
    """What the expressions read: the parsed body, and the headers by lower-case name."""
    return {"body": body, "headers": {name.lower(): value for name, value in headers.items()}}


def first_match(
    source: str,
    mappings: Sequence[WebhookMapping],
    document: Mapping[str, Any],
    context: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> Match:
    """The event of the first mapping whose ``when`` holds for ``document``; raises NoMappingMatched
    listing every mapping tried, or InvalidMapping naming the mapping and field of a bad value.

    ``defaults``: event fields for those the mapping does not give (a CloudEvent's event id)."""
    tried: list[Problem] = []
    for mapping in mappings:
        if mapping.when is not None:
            try:
                selected = mapping.when.search(document)
            except JMESPathError as error:
                tried.append(Problem(field=f"{mapping.name}.when", reason=f"{mapping.when.text}: {error}"))
                continue
            if not _truthy(selected):
                reason = f"{mapping.when.text} is {orjson.dumps(selected).decode()} for this body"
                tried.append(Problem(field=f"{mapping.name}.when", reason=reason))
                continue
        return Match(mapping.name, _event(mapping, document, context, defaults or {}))
    raise NoMappingMatched(source, [mapping.name for mapping in mappings], tried)


def _truthy(value: object) -> bool:
    # JMESPath's truth: false, null, "", [] and {} are false; 0 is true.
    return value is not None and value is not False and value not in ("", [], {})


def _event(
    mapping: WebhookMapping,
    document: Mapping[str, Any],
    context: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> BusinessEvent:
    fields: dict[str, Any] = dict(defaults)
    problems: list[Problem] = []

    def value(field: str, expression: Expression) -> Any:
        try:
            return expression.search(document)
        except JMESPathError as error:
            problems.append(
                Problem(field=field, reason=f"mapping {mapping.name!r}: {expression.text}: {error}")
            )
            return None

    for field, expression in mapping.event:
        if expression is None or field in ("aliases", "attributes"):
            continue
        failed = len(problems)
        found = value(field, expression)
        if found is None:
            if field in REQUIRED_FIELDS and len(problems) == failed:  # (an error is named already)
                reason = f"mapping {mapping.name!r}: {expression.text} is null for this body"
                problems.append(Problem(field=field, reason=reason))
            continue
        fields[field] = _key(found) if field in KEY_FIELDS else found
    for name in ("aliases", "attributes"):
        found_map = {
            key: value(f"{name}.{key}", expression)
            for key, expression in getattr(mapping.event, name).items()
        }
        convert = _key if name == "aliases" else _attribute
        fields[name] = {key: convert(found) for key, found in found_map.items() if found is not None}
    if problems:
        raise InvalidMapping(mapping.name, problems)
    try:
        return validate_event(fields, context)
    except ValidationError as error:
        named = [
            Problem(field=problem.field, reason=f"mapping {mapping.name!r} ({where}): {problem.reason}")
            for problem in problems_of(error)
            for where in [_text(mapping.event, problem.field)]
        ]
        raise InvalidMapping(mapping.name, named) from None


def _text(expressions: EventExpressions, field: str) -> str:
    """The expression a field of the event came from, by its dotted name (``aliases.billing.invoice``)."""
    name, _, key = field.partition(".")
    found = getattr(expressions, name, None)
    if isinstance(found, dict):
        found = found.get(key)
    return found.text if isinstance(found, Expression) else field


def _key(value: object) -> object:
    # A whole number is a key as well as text is (NetSuite's internal ids): keys are text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _attribute(value: object) -> str:
    # Attributes are text: text stays as it is, anything else is kept as its JSON.
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def stripe_signature(body: bytes, secret: str, signed_at: int) -> str:
    """Stripe's v1 signature: the hex HMAC-SHA256 of ``"<signed_at>.<body>"`` with ``secret``."""
    return hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()


def verify_stripe(header: str | None, body: bytes, secret: str, now: float) -> None:
    """Stripe's scheme: ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`` (one
    or more v1, during a secret's rotation), refused when older than STRIPE_TOLERANCE_S."""
    if not header:
        raise SignatureError("the Stripe-Signature header is missing")
    pairs = [part.strip().partition("=") for part in header.split(",")]
    timestamps = [value for key, _, value in pairs if key == "t"]
    signatures = [value for key, _, value in pairs if key == "v1"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise SignatureError("the Stripe-Signature header has no timestamp (t=<unix seconds>)")
    if not signatures:
        raise SignatureError("the Stripe-Signature header has no v1 signature")
    signed_at = int(timestamps[0])
    if signed_at < now - STRIPE_TOLERANCE_S:
        raise SignatureError(
            f"the Stripe-Signature timestamp is {now - signed_at:.0f} s old; at most {STRIPE_TOLERANCE_S} s "
            "is accepted (a replayed delivery, or a clock that is off)"
        )
    expected = stripe_signature(body, secret, signed_at)
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise SignatureError("the Stripe-Signature does not match the body signed with the source's secret")


class Webhooks:
    """The sources of a mappings file, each with its signature and mappings."""

    def __init__(self, sources: Mapping[str, Source] | None = None, path: str = "") -> None:
        self.sources = dict(sources or {})
        self.path = path

    def __len__(self) -> int:
        return sum(len(source.mappings) for source in self.sources.values())


def load(path: str | os.PathLike[str] | None) -> Webhooks:
    """Read and check a mappings file (None: no webhooks); raises WebhookError naming the file, the
    source, the mapping and the field of the first problem. A signature's secret variable must be set."""
    if path is None:
        return Webhooks()
    name = os.fspath(path)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise WebhookError(f"{name}: cannot be read: {error.strerror or error}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise WebhookError(f"{name}: not YAML: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise WebhookError(f'{name}: expected a mapping with "sources:"')
    try:
        parsed = WebhooksFile.model_validate(document)
    except ValidationError as error:
        raise WebhookError(f"{name}: {_where(error, document)}") from None
    for source_name, source in parsed.sources.items():
        if source.signature is not None:
            secret = os.environ.get(source.signature.secret_env, "")
            if not secret:
                raise WebhookError(
                    f"{name}: source {source_name!r}: signature.secret_env: the variable "
                    f"{source.signature.secret_env} is not set (the sender's signing secret)"
                )
            source.signature.secret = SecretStr(secret)
        mappings = [mapping.name for mapping in source.mappings]
        repeated = sorted({mapping for mapping in mappings if mappings.count(mapping) > 1})
        if repeated:
            raise WebhookError(f"{name}: source {source_name!r}: mapping {repeated[0]!r} is defined twice")
    return Webhooks(parsed.sources, name)


def _where(error: ValidationError, document: Mapping[str, Any]) -> str:
    """The first problem as ``source 'stripe', mapping 'invoice-paid': event.stepp: reason``."""
    problem = error.errors(include_url=False)[0]
    location = list(problem["loc"])
    words: list[str] = []
    if location[:1] == ["sources"] and len(location) >= 2:
        source = str(location[1])
        words.append(f"source {source!r}")
        location = location[2:]
        if location[:1] == ["mappings"] and len(location) >= 2 and isinstance(location[1], int):
            raw = document.get("sources", {}).get(source, {}).get("mappings", [])[location[1]]
            label = raw.get("name") if isinstance(raw, dict) else None
            words.append(f"mapping {label!r}" if label else f"mapping #{location[1] + 1}")
            location = location[2:]
    reason = {
        "extra_forbidden": "is not a field (check its spelling)",
        "missing": "is required",
    }.get(problem["type"], str(problem["msg"]).removeprefix("Value error, "))
    field = ".".join(str(part) for part in location) or "the file"
    return f"{', '.join(words)}: {field}: {reason}" if words else f"{field}: {reason}"
