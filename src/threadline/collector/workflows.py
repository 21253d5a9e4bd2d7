"""Workflow definitions (docs/architecture.md, "Workflow definitions"): load, validate and query them.

Transaction state is judged against these definitions, so a mistake in them must stop the collector
at start-up with the file, the line and the reason instead of silently mis-judging transactions later.
The YAML is only composed into nodes (never constructed into arbitrary objects), which is both safe
and what lets every problem point at its line.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .alert_rules import AlertRule, parse_alerts
from .integration_actions import IntegrationAction, parse_actions
from .storage.writes import KeyRules

DEFAULT_STUCK_AFTER_S = 3600.0

_TOP_KEYS = frozenset({"workflows", "alerts", "actions"})
_WORKFLOW_KEYS = frozenset(
    {
        "sla",
        "stuck_after",
        "complete_on",
        "fail_on",
        "steps",
        "description",
        "reconcile",
        "unique_by",
        "dimensions",
    }
)
_STEP_KEYS = frozenset({"name", "system", "key", "after", "within", "description"})

_TAG = "tag:yaml.org,2002:"
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_NULL_TAG = _TAG + "null"
_MERGE_TAG = _TAG + "merge"
# Scalars whose text we take as written; anything else (e.g. a custom `!env` tag) would be misread.
_TEXT_TAGS = frozenset(_TAG + tag for tag in ("str", "int", "float", "bool", "timestamp"))

_NUMBER = r"\d+(?:\.\d+)?"
_SECONDS = re.compile(_NUMBER)
_DURATION = re.compile("".join(rf"(?:(?P<{unit}>{_NUMBER}){unit})?" for unit in "dhms"))
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_FORMS = "a number of seconds or a duration like 90s, 15m, 1h, 1h30m, 1.5h or 2d"


class WorkflowError(ValueError):
    """A definition problem; ``str()`` reads ``file:line: reason`` so editors and CI logs can jump to it,
    e.g. ``workflows.yaml:14: step "erp.order.created": after names unknown step "crm.won"``, or
    ``file: reason`` when the file itself cannot be read (no line to point at)."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        super().__init__(source, line, reason)
        self.source = source
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class StepDefinition:
    """One expected step; ``after`` makes the expected order explicit so state can spot violations."""

    name: str
    system: str | None
    after: tuple[str, ...]  # prerequisites: default the step above (the first step: none); `after: []`: none
    within_s: float | None  # how long the step may take once due
    line: int  # 1-based line in the source, to point people at the definition
    key_kind: str | None = None  # the kind of key its system sends as correlation id (`key: erp.sales_order`)


AMOUNT = "amount"  # the event's amount, compared with its currency
ATTRIBUTES = "attributes."  # attributes.<key>: one of the event's attributes


# A dimension is an attribute key: it stands in URLs as `dimension=<key>:<value>`, so never a colon.
DIMENSION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
MAX_DIMENSIONS = 8


def value_path(text: str) -> str:
    """A value an event carries, as ``reconcile`` and ``unique_by`` name it; ValueError if none."""
    if text == AMOUNT or (text.startswith(ATTRIBUTES) and len(text) > len(ATTRIBUTES)):
        return text
    raise ValueError(f"{text!r} is not `amount` or `attributes.<key>`")


@dataclass(frozen=True)
class Tolerance:
    """How far two values may differ and still agree: ``exact``, an absolute difference (``50``) or a
    percent of the larger one (``0.5%``). Text values agree only when equal, whatever the tolerance."""

    kind: Literal["exact", "absolute", "percent"] = "exact"
    amount: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        cleaned = text.strip()
        if cleaned == "exact":
            return cls()
        kind: Literal["absolute", "percent"] = "percent" if cleaned.endswith("%") else "absolute"
        try:
            amount = float(cleaned.removesuffix("%"))
        except ValueError:
            amount = math.nan
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"{text!r} is not `exact`, a difference (50) or a percent (0.5%) of 0 or more")
        return cls(kind, amount)

    @property
    def text(self) -> str:
        return {"exact": "exact", "absolute": f"{self.amount:g}", "percent": f"{self.amount:g}%"}[self.kind]

    def agree(self, a: float, b: float) -> bool:
        if self.kind == "exact":
            return a == b
        allowed = self.amount if self.kind == "absolute" else self.amount / 100 * max(abs(a), abs(b))
        return abs(a - b) <= allowed * (1 + 1e-9)  # a float's last bit must not make 0.5% a mismatch


@dataclass(frozen=True)
class Reconciliation:
    """A value the events of ``steps`` must agree on: ``amount`` (with its currency) or
    ``attributes.<key>``, within ``tolerance``."""

    value: str
    steps: tuple[str, ...]
    tolerance: Tolerance
    ignore_currency: bool = False  # amounts in different currencies are a mismatch unless set
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class UniqueKey:
    """A business key (``attributes.<key>``) two transactions of the workflow started within
    ``within_s`` of each other must not share; ``None``: however far apart."""

    value: str
    within_s: float | None
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class WorkflowDefinition:
    """One workflow: its steps, their order, and what completes, fails, breaches or stalls it."""

    name: str
    sla_s: float | None  # first event -> a complete_on step; None: no SLA
    stuck_after_s: float  # no progress for this long while a step is due -> stuck
    complete_on: tuple[str, ...]
    fail_on: tuple[str, ...]
    steps: tuple[StepDefinition, ...]
    reconcile: tuple[Reconciliation, ...] = ()  # values its steps' events must agree on
    unique_by: UniqueKey | None = None  # a business key no two of its transactions may share
    # The attributes its transactions are sliced by (region, customer tier, product): their keys
    dimensions: tuple[str, ...] = ()

    def step(self, name: str) -> StepDefinition | None:
        """The step called ``name``, or None when events name a step the definition does not know."""
        return self._by_name.get(name)

    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    def successors(self, name: str) -> frozenset[str]:
        """Every step that must come, directly or indirectly, after ``name``; KeyError if unknown."""
        return self._successors[name]

    def predecessors(self, name: str) -> frozenset[str]:
        """Every step that must come, directly or indirectly, before ``name``; KeyError if unknown."""
        return self._predecessors[name]

    @cached_property
    def _by_name(self) -> dict[str, StepDefinition]:
        return {step.name: step for step in self.steps}

    @cached_property
    def _predecessors(self) -> dict[str, frozenset[str]]:
        return _reachable({step.name: step.after for step in self.steps})

    @cached_property
    def _successors(self) -> dict[str, frozenset[str]]:
        followers: dict[str, list[str]] = {step.name: [] for step in self.steps}
        for step in self.steps:
            for before in step.after:
                followers[before].append(step.name)
        return _reachable(followers)


@dataclass(frozen=True)
class Workflows:
    """Every definition of one file, in file order, plus its alert rules (``alert_rules``) and its
    actions on the owning integrations (``integration_actions``)."""

    definitions: Mapping[str, WorkflowDefinition]
    source: str  # the path, or "<string>"
    alerts: tuple[AlertRule, ...] = ()
    actions: tuple[IntegrationAction, ...] = ()

    def get(self, name: str) -> WorkflowDefinition | None:
        return self.definitions.get(name)

    def __iter__(self) -> Iterator[WorkflowDefinition]:
        return iter(self.definitions.values())

    def __len__(self) -> int:
        return len(self.definitions)

    @cached_property
    def key_rules(self) -> KeyRules:
        """What linking keys at ingest needs of these definitions (see ``storage.writes``)."""
        return KeyRules(
            key_kinds={(d.name, s.name): s.key_kind for d in self for s in d.steps if s.key_kind is not None},
            start_steps=frozenset(
                (d.name, s.name) for d in self for s in d.steps if not s.after and s.name not in d.fail_on
            ),
        )


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a bare number is seconds, text may combine d, h, m and s ("1h30m", "1.5h").

    Raises ValueError naming the value unless the result is a finite number of seconds above zero.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration {value!r}: expected {_DURATION_FORMS}")
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION.fullmatch(text)
        if _SECONDS.fullmatch(text):
            seconds = float(text)
        elif text and parts:
            seconds = sum(float(n) * _UNIT_SECONDS[unit] for unit, n in parts.groupdict().items() if n)
        else:
            raise ValueError(f"invalid duration {value!r}: expected {_DURATION_FORMS}")
    else:
        seconds = float(value)
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"invalid duration {value!r}: must be more than 0 seconds and finite")
    return seconds


def load(path: str | os.PathLike[str]) -> Workflows:
    """Read and validate a definitions file; problems raise WorkflowError naming the path and line.

    A file that cannot be read (missing, a folder, not permitted) is a WorkflowError too, so every
    caller has one error to report and none sees an OSError's Python wording.
    """
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WorkflowError(source, None, f"cannot be read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowError(
            source, data.count(b"\n", 0, exc.start) + 1, f"not UTF-8 text: {exc.reason}"
        ) from None
    return parse(text, source)


def parse(text: str, source: str = "<string>") -> Workflows:
    """Validate definitions given as text; ``source`` names them in every WorkflowError."""
    reader = _Reader(source, text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise reader.invalid_yaml(exc) from None
    if root is None:
        raise WorkflowError(source, 1, 'the file is empty: expected a mapping with "workflows:"')
    top = reader.mapping(root, "the top level")
    reader.check_keys(top, _TOP_KEYS, "the top level")
    if "workflows" not in top:
        raise reader.error(root, 'missing top-level key "workflows"')
    workflows_node = top["workflows"][1]
    entries = reader.mapping(workflows_node, '"workflows"')
    if not entries:
        raise reader.error(workflows_node, '"workflows" defines no workflow')
    definitions = {name: _workflow(reader, name, key, node) for name, (key, node) in entries.items()}
    declared = {key for definition in definitions.values() for key in definition.dimensions}
    alerts = _alerts(reader, top["alerts"][1], definitions.keys(), declared) if "alerts" in top else ()
    actions = (
        parse_actions(reader, top["actions"][1], {name: d.step_names() for name, d in definitions.items()})
        if "actions" in top
        else ()
    )
    return Workflows(MappingProxyType(definitions), source, alerts, actions)


# A mapping's entries by key text: (key node, value node), the key node for errors about the key itself.
_Entries = dict[str, tuple[Node, Node]]


class _Reader:
    """Reads composed YAML nodes, turning every problem into a WorkflowError at the offending node's line."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def error(self, node: Node, reason: str) -> WorkflowError:
        return WorkflowError(self.source, node.start_mark.line + 1, reason)

    def invalid_yaml(self, exc: yaml.YAMLError) -> WorkflowError:
        """PyYAML's own error, reduced to file:line: reason."""
        if isinstance(exc, yaml.MarkedYAMLError):
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            reason = "; ".join(part for part in (exc.context, exc.problem) if part)
        else:  # a ReaderError: a character YAML does not allow, at a character position
            line = self.text.count("\n", 0, getattr(exc, "position", 0)) + 1
            reason = str(exc).splitlines()[0]
        return WorkflowError(self.source, line, f"invalid YAML: {reason}")

    def mapping(self, node: Node, what: str, merging: frozenset[int] = frozenset()) -> _Entries:
        """The entries of a mapping; YAML merge keys (``<<: *defaults``) apply as they would in safe_load."""
        if not isinstance(node, MappingNode) or node.tag != _MAP_TAG:
            raise self.error(node, f"{what} must be a mapping")
        merging = merging | {id(node)}
        entries: _Entries = {}
        merged: list[Node] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                merged.extend(value.value if isinstance(value, SequenceNode) else [value])
                continue
            name = self.text_of(key, f"a key in {what}")
            if name in entries:
                first = entries[name][0].start_mark.line + 1
                raise self.error(key, f'{what}: duplicate key "{name}" (first on line {first})')
            entries[name] = (key, value)
        for source in merged:  # the mapping's own keys win, then earlier merged mappings over later ones
            if id(source) in merging:
                raise self.error(source, f"{what}: a merge (<<) includes the mapping itself")
            for name, entry in self.mapping(source, f"{what}: merged value", merging).items():
                entries.setdefault(name, entry)
        return entries

    def check_keys(self, entries: _Entries, allowed: frozenset[str], what: str) -> None:
        for name, (key, _) in entries.items():
            if name not in allowed:
                raise self.error(key, f'{what}: unknown key "{name}" (allowed: {", ".join(sorted(allowed))})')

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode) or node.tag != _SEQ_TAG:
            raise self.error(node, f"{what} must be a list")
        return list(node.value)

    def text_of(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode):
            raise self.error(
                node, f"{what} must be text, not a {'list' if isinstance(node, SequenceNode) else 'mapping'}"
            )
        if node.tag == _NULL_TAG or not node.value.strip():
            raise self.error(node, f"{what} must not be empty")
        if node.tag not in _TEXT_TAGS:
            raise self.error(node, f"{what} has an unsupported tag {node.tag}")
        return str(node.value)

    def names(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A list of names (or one name alone), each with its node so errors can point at it."""
        items = (
            [node] if isinstance(node, ScalarNode) and node.tag != _NULL_TAG else self.sequence(node, what)
        )
        result: list[tuple[str, Node]] = []
        for item in items:
            name = self.text_of(item, f"an entry of {what}")
            if any(name == seen for seen, _ in result):
                raise self.error(item, f'{what} names "{name}" twice')
            result.append((name, item))
        return result

    def duration(self, node: Node, what: str) -> float:
        value = self.text_of(node, what)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(node, f"{what}: {exc}") from None

    def raw(self, node: Node) -> Any:
        """Plain Python data for a node, built with the safe constructor only."""
        try:
            return SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.invalid_yaml(exc) from None


def _workflow(reader: _Reader, name: str, key: Node, node: Node) -> WorkflowDefinition:
    """One workflow; ``key`` is its name's node, the line to point at when the whole workflow is wrong."""
    what = f'workflow "{name}"'
    entries = reader.mapping(node, what)
    reader.check_keys(entries, _WORKFLOW_KEYS, what)
    if "description" in entries:
        reader.text_of(entries["description"][1], f"{what}: description")
    if "steps" not in entries:
        raise reader.error(key, f"{what} has no steps")
    steps = _steps(reader, what, entries["steps"][1])
    known = {step.name for step in steps}
    sla_s = reader.duration(entries["sla"][1], f"{what}: sla") if "sla" in entries else None
    stuck_after_s = (
        reader.duration(entries["stuck_after"][1], f"{what}: stuck_after")
        if "stuck_after" in entries
        else DEFAULT_STUCK_AFTER_S
    )
    fail_on = (
        _references(reader, entries["fail_on"][1], f"{what}: fail_on", known) if "fail_on" in entries else []
    )
    failing = tuple(step for step, _ in fail_on)
    if "complete_on" in entries:
        complete_node = entries["complete_on"][1]
        complete_on = _references(reader, complete_node, f"{what}: complete_on", known)
        if not complete_on:
            raise reader.error(complete_node, f"{what}: complete_on names no step")
        for step, item in complete_on:
            if step in failing:
                raise reader.error(item, f'{what}: step "{step}" is in both complete_on and fail_on')
        completing = tuple(step for step, _ in complete_on)
    else:
        last = [step.name for step in steps if step.name not in failing][-1:]
        if not last:
            raise reader.error(
                entries["fail_on"][1], f"{what}: every step is in fail_on, so nothing completes it"
            )
        completing = tuple(last)
    reconcile = (
        _reconciliations(reader, entries["reconcile"][1], f"{what}: reconcile", known)
        if "reconcile" in entries
        else ()
    )
    unique_by = (
        _unique_key(reader, entries["unique_by"][1], f"{what}: unique_by") if "unique_by" in entries else None
    )
    dimensions = (
        _dimensions(reader, entries["dimensions"][1], f"{what}: dimensions")
        if "dimensions" in entries
        else ()
    )
    return WorkflowDefinition(
        name=name,
        sla_s=sla_s,
        stuck_after_s=stuck_after_s,
        complete_on=completing,
        fail_on=failing,
        steps=steps,
        reconcile=reconcile,
        unique_by=unique_by,
        dimensions=dimensions,
    )


def _steps(reader: _Reader, what: str, node: Node) -> tuple[StepDefinition, ...]:
    """The steps in file order, each ``after`` resolved and checked for unknown steps and cycles."""
    items = (
        []
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG
        else reader.sequence(node, f"{what}: steps")
    )
    if not items:
        raise reader.error(node, f"{what} has no steps")
    declared: list[tuple[str, Node, _Entries]] = []
    lines: dict[str, int] = {}
    for index, item in enumerate(items, 1):
        entries = reader.mapping(item, f"{what}: step {index}")
        if "name" not in entries:
            raise reader.error(item, f"{what}: step {index} has no name")
        name_node = entries["name"][1]
        name = reader.text_of(name_node, f"{what}: step {index}: name")
        if name in lines:
            raise reader.error(name_node, f'duplicate step "{name}" (first defined on line {lines[name]})')
        lines[name] = item.start_mark.line + 1
        reader.check_keys(entries, _STEP_KEYS, f'step "{name}"')
        declared.append((name, item, entries))

    steps: list[StepDefinition] = []
    explicit: dict[tuple[str, str], Node] = {}  # (step, prerequisite) -> the `after` entry, for cycle errors
    for position, (name, item, entries) in enumerate(declared):
        label = f'step "{name}"'
        if "after" in entries:
            after = _references(reader, entries["after"][1], f"{label}: after", lines.keys())
            for before, before_node in after:
                if before == name:
                    raise reader.error(before_node, f"{label}: after names the step itself")
                explicit[name, before] = before_node
            prerequisites = tuple(before for before, _ in after)
        else:
            prerequisites = (declared[position - 1][0],) if position else ()
        if "description" in entries:
            reader.text_of(entries["description"][1], f"{label}: description")
        system = reader.text_of(entries["system"][1], f"{label}: system") if "system" in entries else None
        within_s = reader.duration(entries["within"][1], f"{label}: within") if "within" in entries else None
        key_kind = reader.text_of(entries["key"][1], f"{label}: key") if "key" in entries else None
        steps.append(
            StepDefinition(name, system, prerequisites, within_s, item.start_mark.line + 1, key_kind)
        )

    cycle = _find_cycle({step.name: step.after for step in steps})
    if cycle:
        # Default `after` edges point up the file, so a cycle has an explicit edge pointing down: blame it.
        order = {name: position for position, name in enumerate(lines)}
        start = next(i for i, step in enumerate(cycle) if order[cycle[(i + 1) % len(cycle)]] > order[step])
        cycle = cycle[start:] + cycle[:start]
        raise reader.error(
            explicit[cycle[0], cycle[1]],
            f'step "{cycle[0]}": after forms a cycle: {" after ".join([*cycle, cycle[0]])}',
        )
    return tuple(steps)


def _references(reader: _Reader, node: Node, what: str, known: Container[str]) -> list[tuple[str, Node]]:
    """Step names that must all be steps of the workflow."""
    references = reader.names(node, what)
    for name, item in references:
        if name not in known:
            raise reader.error(item, f'{what} names unknown step "{name}"')
    return references


_RECONCILE_KEYS = frozenset({"value", "steps", "tolerance", "currency", "description"})
_UNIQUE_KEYS = frozenset({"value", "within", "description"})
_CURRENCY_CHOICES = ("match", "ignore")


def _value(reader: _Reader, node: Node, what: str) -> str:
    value = reader.text_of(node, what)
    try:
        return value_path(value)
    except ValueError as exc:
        raise reader.error(node, f"{what}: {exc}") from None


def _reconciliations(
    reader: _Reader, node: Node, what: str, known: Container[str]
) -> tuple[Reconciliation, ...]:
    """``reconcile:``, a list of the values that must agree, each across two or more steps."""
    rules: list[Reconciliation] = []
    for index, item in enumerate(reader.sequence(node, what), 1):
        label = f"{what} {index}"
        entries = reader.mapping(item, label)
        reader.check_keys(entries, _RECONCILE_KEYS, label)
        for required in ("value", "steps"):
            if required not in entries:
                raise reader.error(item, f"{label} has no `{required}`")
        value = _value(reader, entries["value"][1], f"{label}: value")
        steps = _references(reader, entries["steps"][1], f"{label}: steps", known)
        if len(steps) < 2:
            raise reader.error(entries["steps"][1], f"{label}: steps must name two steps or more to compare")
        tolerance = Tolerance()
        if "tolerance" in entries:
            tolerance_node = entries["tolerance"][1]
            try:
                tolerance = Tolerance.parse(reader.text_of(tolerance_node, f"{label}: tolerance"))
            except ValueError as exc:
                raise reader.error(tolerance_node, f"{label}: tolerance: {exc}") from None
        currency = "match"
        if "currency" in entries:
            currency_node = entries["currency"][1]
            currency = reader.text_of(currency_node, f"{label}: currency")
            if currency not in _CURRENCY_CHOICES or value != AMOUNT:
                reason = (
                    f"must be {' or '.join(_CURRENCY_CHOICES)}, not {currency!r}"
                    if currency not in _CURRENCY_CHOICES
                    else "applies to `value: amount` only"
                )
                raise reader.error(currency_node, f"{label}: currency {reason}")
        if "description" in entries:
            reader.text_of(entries["description"][1], f"{label}: description")
        step_names = tuple(step for step, _ in steps)
        rules.append(
            Reconciliation(value, step_names, tolerance, currency == "ignore", item.start_mark.line + 1)
        )
    return tuple(rules)


def _unique_key(reader: _Reader, node: Node, what: str) -> UniqueKey:
    """``unique_by: {value: attributes.tax_id, within: 30d}`` (or ``unique_by: attributes.tax_id``)."""
    if isinstance(node, ScalarNode):
        return UniqueKey(_value(reader, node, what), None, node.start_mark.line + 1)
    entries = reader.mapping(node, what)
    reader.check_keys(entries, _UNIQUE_KEYS, what)
    if "value" not in entries:
        raise reader.error(node, f"{what} has no `value`")
    value = _value(reader, entries["value"][1], f"{what}: value")
    within = reader.duration(entries["within"][1], f"{what}: within") if "within" in entries else None
    if "description" in entries:
        reader.text_of(entries["description"][1], f"{what}: description")
    return UniqueKey(value, within, node.start_mark.line + 1)


def _dimensions(reader: _Reader, node: Node, what: str) -> tuple[str, ...]:
    """``dimensions: [region, attributes.customer_tier]``: attribute keys, each named once."""
    keys: list[str] = []
    for name, item in reader.names(node, what):
        key = name.removeprefix(ATTRIBUTES)
        if not DIMENSION_NAME.fullmatch(key):
            raise reader.error(
                item,
                f'{what}: "{name}" is not an attribute key (letters, digits, `_`, `-` and `.`, '
                f"starting with a letter; `attributes.` before it is optional)",
            )
        if key in keys:
            raise reader.error(item, f'{what} names "{key}" twice')
        keys.append(key)
    if len(keys) > MAX_DIMENSIONS:
        raise reader.error(node, f"{what}: at most {MAX_DIMENSIONS} dimensions, not {len(keys)}")
    return tuple(keys)


def _find_cycle(after: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The steps of one cycle among ``after`` (each must come after the next, the last after the first)."""
    waiting = {name: len(before) for name, before in after.items()}
    followers: dict[str, list[str]] = {name: [] for name in after}
    for name, before in after.items():
        for prerequisite in before:
            followers[prerequisite].append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    while ready:
        done = ready.pop()
        del waiting[done]
        for follower in followers[done]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                ready.append(follower)
    if not waiting:
        return None
    # Every step left waits on another step left, so following them must come back round to one.
    path = [next(iter(waiting))]
    while True:
        step = next(before for before in after[path[-1]] if before in waiting)
        if step in path:
            return path[path.index(step) :]
        path.append(step)


def _reachable(edges: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """For each step, every step reachable from it along ``edges`` (acyclic once validated)."""
    closure: dict[str, frozenset[str]] = {}
    for start, first in edges.items():
        seen: set[str] = set()
        todo = list(first)
        while todo:
            step = todo.pop()
            if step not in seen:
                seen.add(step)
                todo.extend(edges[step])
        closure[start] = frozenset(seen)
    return closure


def _alerts(
    reader: _Reader, node: Node, workflows: Container[str], dimensions: Collection[str]
) -> tuple[AlertRule, ...]:
    """The alert rules, validated here so a bad rule fails the load (or reload) like a bad step."""
    return parse_alerts(reader, node, workflows, dimensions)
