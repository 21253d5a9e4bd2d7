"""Alert rules and receivers: the ``alerts:`` section of the workflow definitions file.

::

    alerts:
      receivers:
        ops-webhook: {type: webhook, url_env: OPS_WEBHOOK_URL}     # the URL stays out of the file
        ops-slack: {type: slack, url: https://hooks.slack.com/services/T0/B0/XXXX}
      rules:
        - {name: q2c-sla-breach, workflow: quote-to-cash, when: sla_breached,
           severity: critical, receivers: [ops-webhook]}
        - {name: stuck-over-2h, when: stuck_longer_than, duration: 2h,
           severity: warning, receivers: [ops-slack]}
        - {name: many-stuck, when: stuck_or_failed_count_above, threshold: 10, window: 1h, ...}
        - {name: netsuite-errors, when: system_error_rate_above, system: netsuite,
           percent: 5, window: 15m, ...}
        - {name: governance, when: violation, ...}
        - {name: value-at-risk, when: value_at_risk_above, amount: 100000, currency: USD, ...}
        - {name: amounts-disagree, when: mismatch, ...}     # the workflow's `reconcile:`
        - {name: same-customer-twice, when: duplicate, ...}  # the workflow's `unique_by:`
        - {name: will-breach, when: predicted_breach, lead: 30m, ...}   # forecast: breach within 30m
        - {name: stripe-schema, when: schema_drift, system: stripe, ...}  # an attribute stopped or began

Notifications are grouped and throttled as Alertmanager does (``Grouping``): each receiver gets one
notification per group of alerts (``group_by`` label values), at most every ``group_interval``,
and again every ``repeat_interval`` while it fires. A receiver's grouping applies to every rule
sending to it; a rule's own settings override it::

        ops-slack: {type: slack, url_env: SLACK_URL, group_by: [rule, system], group_wait: 1m}
        - {name: stuck-over-2h, ..., group_interval: 10m, repeat_interval: 12h}

A rule without ``workflow`` applies to every workflow. Per-transaction conditions fire once per
transaction (and resolve when it no longer meets them); the others fire once per rule, or per
system (error rate without ``system``) or currency (value at risk without ``currency``), or per
drift (a system's step and attribute: ``state/drift.py``).

A mistake here is reported like every other definition problem, ``file:line: reason``, and stops
the start (or keeps the old definitions on reload): an alert that silently never fires is worse
than a collector that refuses a bad file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, get_args

from yaml.nodes import Node

from .models import AlertLabel

Condition = Literal[
    "sla_breached",
    "stuck_longer_than",
    "failed",
    "violation",
    "stuck_or_failed_count_above",
    "system_error_rate_above",
    "value_at_risk_above",
    "mismatch",
    "duplicate",
    "predicted_breach",
    "schema_drift",
]
Severity = Literal["critical", "warning", "info"]
ReceiverType = Literal["webhook", "slack"]

CONDITIONS: tuple[str, ...] = get_args(Condition)
SEVERITIES: tuple[str, ...] = get_args(Severity)
RECEIVER_TYPES: tuple[str, ...] = get_args(ReceiverType)
PER_TRANSACTION: frozenset[str] = frozenset(
    {"sla_breached", "stuck_longer_than", "failed", "violation", "mismatch", "duplicate", "predicted_breach"}
)

_Entries = dict[str, tuple[Node, Node]]  # a mapping's entries by key: (key node, value node)


class DefinitionReader(Protocol):
    """What this section needs of the definitions file's reader (``workflows``, which calls in
    here): typed values, each problem an error at the offending node's line."""

    def error(self, node: Node, reason: str) -> ValueError: ...
    def raw(self, node: Node) -> Any: ...
    def mapping(self, node: Node, what: str) -> _Entries: ...
    def check_keys(self, entries: _Entries, allowed: frozenset[str], what: str) -> None: ...
    def sequence(self, node: Node, what: str) -> list[Node]: ...
    def text_of(self, node: Node, what: str) -> str: ...
    def names(self, node: Node, what: str) -> list[tuple[str, Node]]: ...
    def duration(self, node: Node, what: str) -> float: ...


# An alert's labels, what ``group_by`` and silences match on: the rule, its severity, the workflow,
# the system (the one a transaction waits on, or the rule's system) and the currency (a dimension of
# the transaction, or the rule's), and the subject (the transaction, system or currency).
LABELS: tuple[str, ...] = get_args(AlertLabel)
EVERY_LABEL = "..."  # group_by: [...]: every label, so each alert is a group of its own (as Alertmanager)


@dataclass(frozen=True)
class Grouping:
    """How a receiver's notifications are grouped and throttled, with Alertmanager's defaults: the
    first notification of a group waits ``group_wait`` for others to join it, the next ones at least
    ``group_interval`` after the one before, and a group still firing is sent again after
    ``repeat_interval``."""

    group_by: tuple[str, ...] = ("rule",)
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS if EVERY_LABEL in self.group_by else self.group_by


_GROUPING_KEYS: dict[str, str] = {  # key in the file: Grouping field
    "group_by": "group_by",
    "group_wait": "group_wait_s",
    "group_interval": "group_interval_s",
    "repeat_interval": "repeat_interval_s",
}
_COMMON_KEYS = frozenset(
    {"name", "when", "workflow", "severity", "receivers", "description", "dimensions"}
) | frozenset(_GROUPING_KEYS)
# Per condition: (required parameters, optional parameters).
_PARAMETERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "sla_breached": (frozenset(), frozenset()),
    "stuck_longer_than": (frozenset({"duration"}), frozenset()),
    "failed": (frozenset(), frozenset()),
    "violation": (frozenset(), frozenset()),
    "stuck_or_failed_count_above": (frozenset({"threshold", "window"}), frozenset()),
    "system_error_rate_above": (frozenset({"percent", "window"}), frozenset({"system", "min_events"})),
    "value_at_risk_above": (frozenset({"amount"}), frozenset({"currency"})),
    "mismatch": (frozenset(), frozenset()),
    "duplicate": (frozenset(), frozenset()),
    "predicted_breach": (frozenset({"lead"}), frozenset()),
    "schema_drift": (frozenset(), frozenset({"system"})),
}
_RECEIVER_KEYS = frozenset({"type", "url", "url_env", "description"}) | frozenset(_GROUPING_KEYS)
_SECTION_KEYS = frozenset({"receivers", "rules"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


@dataclass(frozen=True)
class Receiver:
    """Where notifications go. The URL may come from the environment, so secrets stay out of the file."""

    name: str
    type: ReceiverType
    url: str | None = None
    url_env: str | None = None
    line: int = 0
    grouping: tuple[tuple[str, Any], ...] = ()  # the grouping settings set on it, as (field, value)

    def resolve_url(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The URL to post to now; None while ``url_env`` names an unset variable."""
        if self.url:
            return self.url
        return (environ.get(self.url_env or "") or "").strip() or None

    @property
    def target(self) -> str:
        """Where it posts, for people: the variable's name, never a URL (it may hold a token)."""
        return f"${self.url_env}" if self.url_env else "(url in the definitions file)"


@dataclass(frozen=True)
class AlertRule:
    """One rule: a condition over transaction state, its severity and who to tell."""

    name: str
    when: Condition
    severity: Severity
    receivers: tuple[Receiver, ...]
    workflow: str | None = None  # None: every workflow
    description: str | None = None
    duration_s: float | None = None  # stuck_longer_than
    threshold: int | None = None  # stuck_or_failed_count_above
    window_s: float | None = None  # stuck_or_failed_count_above, system_error_rate_above
    system: str | None = None  # system_error_rate_above, schema_drift; None: each system on its own
    percent: float | None = None  # system_error_rate_above
    min_events: int = 1  # system_error_rate_above: fewer events in the window never fire
    amount: float | None = None  # value_at_risk_above
    currency: str | None = None  # value_at_risk_above; None: each currency on its own
    lead_s: float | None = None  # predicted_breach: how long before the SLA deadline it fires
    # (dimension, value) a transaction must have, each (per-transaction rules): `dimensions: {region: EMEA}`
    dimensions: tuple[tuple[str, str], ...] = ()
    grouping: tuple[tuple[str, Any], ...] = ()  # the grouping settings set on the rule, as (field, value)
    line: int = field(default=0, compare=False)

    def grouping_for(self, receiver: Receiver) -> Grouping:
        """How this rule's notifications to ``receiver`` are grouped: the rule's settings, else the
        receiver's, else Alertmanager's defaults."""
        return Grouping(**dict(receiver.grouping + self.grouping))

    @property
    def per_transaction(self) -> bool:
        return self.when in PER_TRANSACTION

    def parameters(self) -> dict[str, Any]:
        """The condition's own settings, as set (for the API and the payloads)."""
        values = {
            "duration_seconds": self.duration_s,
            "threshold": self.threshold,
            "window_seconds": self.window_s,
            "system": self.system,
            "percent": self.percent,
            "min_events": self.min_events if self.when == "system_error_rate_above" else None,
            "amount": self.amount,
            "currency": self.currency,
            "lead_seconds": self.lead_s,
        }
        return {name: value for name, value in values.items() if value is not None}


def parse_alerts(
    reader: DefinitionReader, node: Node, workflows: Container[str], dimensions: Collection[str] = ()
) -> tuple[AlertRule, ...]:
    """The rules of an ``alerts:`` mapping, receivers resolved; ``workflows``: the workflow names
    defined, ``dimensions``: the dimensions they declare."""
    reader.raw(node)  # refuses unsafe or unknown YAML tags before anything is read
    section = reader.mapping(node, '"alerts"')
    reader.check_keys(section, _SECTION_KEYS, '"alerts"')
    receivers: dict[str, Receiver] = {}
    if "receivers" in section:
        for name, (key, value) in reader.mapping(section["receivers"][1], '"alerts: receivers"').items():
            receivers[name] = _receiver(reader, name, key, value)
    rules: list[AlertRule] = []
    if "rules" not in section:
        return ()
    items_node = section["rules"][1]
    lines: dict[str, int] = {}
    for index, item in enumerate(reader.sequence(items_node, '"alerts: rules"'), 1):
        rule = _rule(reader, index, item, receivers, workflows, dimensions)
        if rule.name in lines:
            raise reader.error(
                item, f'duplicate alert rule "{rule.name}" (first defined on line {lines[rule.name]})'
            )
        lines[rule.name] = rule.line
        rules.append(rule)
    return tuple(rules)


def _receiver(reader: DefinitionReader, name: str, key: Node, node: Node) -> Receiver:
    what = f'receiver "{name}"'
    entries = reader.mapping(node, what)
    reader.check_keys(entries, _RECEIVER_KEYS, what)
    if "type" not in entries:
        raise reader.error(key, f"{what} has no type ({' or '.join(RECEIVER_TYPES)})")
    kind = reader.text_of(entries["type"][1], f"{what}: type")
    if kind not in RECEIVER_TYPES:
        raise reader.error(
            entries["type"][1], f"{what}: type must be {' or '.join(RECEIVER_TYPES)}, not {kind!r}"
        )
    if ("url" in entries) == ("url_env" in entries):
        raise reader.error(key, f"{what} needs exactly one of url or url_env")
    if "description" in entries:
        reader.text_of(entries["description"][1], f"{what}: description")
    grouping = _grouping(reader, entries, what)
    line = key.start_mark.line + 1
    if "url" in entries:
        url = reader.text_of(entries["url"][1], f"{what}: url").strip()
        if not url.startswith(("http://", "https://")) or len(url) < len("http://x"):
            raise reader.error(entries["url"][1], f"{what}: url must start with http:// or https://")
        return Receiver(name, cast(ReceiverType, kind), url=url, line=line, grouping=grouping)
    variable = reader.text_of(entries["url_env"][1], f"{what}: url_env").strip()
    if not _ENV_NAME.match(variable):
        raise reader.error(entries["url_env"][1], f"{what}: url_env must be an environment variable name")
    return Receiver(name, cast(ReceiverType, kind), url_env=variable, line=line, grouping=grouping)


def _grouping(reader: DefinitionReader, entries: _Entries, what: str) -> tuple[tuple[str, Any], ...]:
    """The grouping settings among a receiver's or a rule's entries, validated, as (field, value)."""
    found: list[tuple[str, Any]] = []
    for key, name in _GROUPING_KEYS.items():
        if key not in entries:
            continue
        node = entries[key][1]
        if key != "group_by":
            found.append((name, reader.duration(node, f"{what}: {key}")))
            continue
        labels = reader.names(node, f"{what}: group_by")
        for label, item in labels:
            if label not in LABELS and label != EVERY_LABEL:
                raise reader.error(
                    item,
                    f"{what}: group_by names unknown label {label!r} "
                    f"(one of {', '.join(LABELS)}, or {EVERY_LABEL!r} for every label)",
                )
        if not labels:
            raise reader.error(node, f"{what}: group_by names no label")
        found.append((name, tuple(label for label, _ in labels)))
    return tuple(found)


def _rule(
    reader: DefinitionReader,
    index: int,
    node: Node,
    receivers: Mapping[str, Receiver],
    workflows: Container[str],
    dimensions: Collection[str],
) -> AlertRule:
    entries = reader.mapping(node, f"alert rule {index}")
    if "name" not in entries:
        raise reader.error(node, f"alert rule {index} has no name")
    name = reader.text_of(entries["name"][1], f"alert rule {index}: name")
    what = f'alert rule "{name}"'
    if "when" not in entries:
        raise reader.error(node, f"{what} has no `when` (one of {', '.join(CONDITIONS)})")
    when = reader.text_of(entries["when"][1], f"{what}: when")
    if when not in CONDITIONS:
        raise reader.error(
            entries["when"][1], f"{what}: when must be one of {', '.join(CONDITIONS)}, not {when!r}"
        )
    required, optional = _PARAMETERS[when]
    reader.check_keys(entries, _COMMON_KEYS | required | optional, f"{what} (when: {when})")
    if when == "schema_drift" and "workflow" in entries:
        raise reader.error(
            entries["workflow"][1], f"{what}: a schema drift is a system's, not a workflow's: name its system"
        )
    missing = sorted(required - entries.keys())
    if missing:
        raise reader.error(node, f"{what}: when: {when} needs {' and '.join(missing)}")
    if "severity" not in entries:
        raise reader.error(node, f"{what} has no severity ({', '.join(SEVERITIES)})")
    severity = reader.text_of(entries["severity"][1], f"{what}: severity")
    if severity not in SEVERITIES:
        raise reader.error(
            entries["severity"][1],
            f"{what}: severity must be one of {', '.join(SEVERITIES)}, not {severity!r}",
        )
    if "receivers" not in entries:
        raise reader.error(node, f"{what} names no receivers")
    chosen = reader.names(entries["receivers"][1], f"{what}: receivers")
    if not chosen:
        raise reader.error(entries["receivers"][1], f"{what} names no receivers")
    for receiver, item in chosen:
        if receiver not in receivers:
            known = ", ".join(sorted(receivers)) or "none is defined under alerts: receivers"
            raise reader.error(
                item, f'{what}: receivers names unknown receiver "{receiver}" (known: {known})'
            )
    workflow = None
    if "workflow" in entries:
        workflow = reader.text_of(entries["workflow"][1], f"{what}: workflow")
        if workflow not in workflows:
            raise reader.error(
                entries["workflow"][1], f'{what}: workflow names unknown workflow "{workflow}"'
            )
    description = (
        reader.text_of(entries["description"][1], f"{what}: description")
        if "description" in entries
        else None
    )

    def duration(key: str) -> float | None:
        return reader.duration(entries[key][1], f"{what}: {key}") if key in entries else None

    def number(key: str, low: float, high: float = math.inf, whole: bool = False) -> float | None:
        if key not in entries:
            return None
        value_node = entries[key][1]
        text = reader.text_of(value_node, f"{what}: {key}")
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            value = math.nan
        if not low <= value <= high or (whole and value != int(value)):
            kind = "a whole number" if whole else "a number"
            bounds = f"at least {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
            raise reader.error(value_node, f"{what}: {key} must be {kind} {bounds}, not {text!r}")
        return value

    threshold = number("threshold", 0, whole=True)
    min_events = number("min_events", 1, whole=True)
    amount = number("amount", 0)
    percent = number("percent", 0, 100)
    currency = None
    if "currency" in entries:
        currency = reader.text_of(entries["currency"][1], f"{what}: currency").strip()
        if not _CURRENCY.match(currency):
            raise reader.error(entries["currency"][1], f"{what}: currency must be a 3-letter code like USD")
        currency = currency.upper()
    return AlertRule(
        name=name,
        when=cast(Condition, when),
        severity=cast(Severity, severity),
        receivers=tuple(receivers[receiver] for receiver, _ in chosen),
        workflow=workflow,
        description=description,
        duration_s=duration("duration"),
        threshold=int(threshold) if threshold is not None else None,
        window_s=duration("window"),
        system=reader.text_of(entries["system"][1], f"{what}: system") if "system" in entries else None,
        percent=percent,
        min_events=int(min_events) if min_events is not None else 1,
        amount=amount,
        currency=currency,
        lead_s=duration("lead"),
        dimensions=_dimensions(reader, entries["dimensions"][1], what, when, dimensions)
        if "dimensions" in entries
        else (),
        grouping=_grouping(reader, entries, what),
        line=node.start_mark.line + 1,
    )


def _dimensions(
    reader: DefinitionReader, node: Node, what: str, when: str, declared: Collection[str]
) -> tuple[tuple[str, str], ...]:
    """``dimensions: {region: EMEA}``: the values a transaction must have, each, for the rule to see it."""
    if when not in PER_TRANSACTION:
        rules = ", ".join(sorted(PER_TRANSACTION))
        raise reader.error(node, f"{what}: dimensions applies to the per-transaction rules ({rules}) only")
    found = []
    for key, (key_node, value_node) in reader.mapping(node, f"{what}: dimensions").items():
        dimension = key.removeprefix("attributes.")
        if dimension not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise reader.error(
                key_node, f'{what}: dimensions names "{key}", which no workflow declares (declared: {known})'
            )
        found.append((dimension, reader.text_of(value_node, f"{what}: dimensions: {key}")))
    return tuple(sorted(found))
