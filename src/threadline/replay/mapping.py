"""The column mapping: which column of a log row feeds which field of a business event.

Shared by CSV (columns are the header) and XES (columns are attribute keys; trace attributes
appear as ``case:<key>``, the convention of process-mining tools, so a CSV exported from an XES
log maps the same way). The syntax, one ``KEY=VALUE`` each (``--map`` on the command line):

- ``<field>=<column>`` for ``correlation_id``, ``workflow``, ``step``, ``system``, ``timestamp``,
  ``status``, ``event_id``, ``duration_ms``, ``attempt``, ``amount``, ``currency``,
  ``error_kind``, ``error_message``, ``trace_id``, ``span_id``;
- ``attribute:<name>=<column>``: the column becomes attribute ``<name>``. Without any
  ``attribute:`` entry, every column not used for a field becomes an attribute of its own name;
- ``alias:<kind>=<column>``: the column is another key of the transaction (``alias:erp.sales_order=SO``);
- options: ``timestamp_format=<strptime format or epoch/epoch_ms/epoch_us>`` for times that are
  not ISO 8601, and for CSV ``delimiter=<char>`` (default: guessed from the header) and
  ``encoding=<codec>`` (default UTF-8, with or without BOM).

A field that is not mapped is looked for under the common names of process-mining exports
(``DETECT``): ``case:concept:name``/``case_id`` → correlation_id, ``concept:name``/``activity`` →
step, ``time:timestamp``/``timestamp`` → timestamp, ``org:resource``/``resource`` → system, ...
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.contract.event import MAX_ATTRIBUTES

from .errors import ReplayError
from .values import TimestampParser, status_of

FIELDS = (
    "correlation_id",
    "workflow",
    "step",
    "system",
    "timestamp",
    "status",
    "event_id",
    "duration_ms",
    "attempt",
    "amount",
    "currency",
    "error_kind",
    "error_message",
    "trace_id",
    "span_id",
)
REQUIRED_COLUMNS = ("correlation_id", "step", "timestamp")  # workflow and system may be constants
CSV_OPTIONS = ("timestamp_format", "delimiter", "encoding")
XES_OPTIONS = ("timestamp_format",)

# Header names recognised without a mapping, compared after ``normalise``; first match wins.
DETECT: dict[str, tuple[str, ...]] = {
    "correlation_id": (
        "correlation_id",
        "case:concept:name",
        "case_id",
        "caseid",
        "case",
        "case_concept_name",
    ),
    "workflow": ("workflow", "process", "process_name"),
    "step": ("step", "concept:name", "activity", "activity_name", "event_name", "event", "task"),
    "system": ("system", "org:resource", "resource", "org:group", "source_system", "application"),
    "timestamp": (
        "timestamp",
        "time:timestamp",
        "complete_timestamp",
        "end_timestamp",
        "event_time",
        "time",
        "datetime",
        "date",
    ),
    "status": ("status", "lifecycle:transition", "lifecycle"),
    "event_id": ("event_id", "eventid", "identity:id"),
    "duration_ms": ("duration_ms",),
    "attempt": ("attempt",),
    "amount": ("amount",),
    "currency": ("currency",),
    "error_kind": ("error_kind",),
    "error_message": ("error_message",),
    "trace_id": ("trace_id",),
    "span_id": ("span_id",),
}

# XES standard extensions (IEEE 1849-2016): the keys are fixed, so several may be tried in turn.
XES_COLUMNS: dict[str, tuple[str, ...]] = {
    "correlation_id": ("case:concept:name",),
    "step": ("concept:name",),
    "timestamp": ("time:timestamp",),
    "system": ("org:resource", "org:group"),
    "status": ("lifecycle:transition",),
    "event_id": ("identity:id",),
}

STATUS_HELP = (
    "use ok, error, retrying, pending or an XES lifecycle transition (complete, start, ate_abort...)"
)


def normalise(header: str) -> str:
    return header.strip().lower().replace(" ", "_").replace("-", "_")


def mapping_from_args(items: Iterable[str]) -> dict[str, str]:
    """``["step=Activity", "attribute:region=Region"]`` (the command line's ``--map``) as a mapping."""
    mapping: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ReplayError(f"mapping {item!r} is not KEY=VALUE (e.g. correlation_id=Order No)")
        mapping[key.strip()] = value
    return mapping


@dataclass(frozen=True)
class MappingSpec:
    """A mapping as the user wrote it, checked for unknown keys, not yet matched to any columns."""

    fields: dict[str, str]
    attributes: dict[str, str]
    aliases: dict[str, str]
    options: dict[str, str]

    @classmethod
    def parse(cls, mapping: Mapping[str, str] | None, options: Collection[str]) -> MappingSpec:
        spec = cls({}, {}, {}, {})
        for key, value in (mapping or {}).items():
            kind, _, name = key.partition(":")
            if key in FIELDS:
                spec.fields[key] = value
            elif kind in ("attribute", "alias") and name:
                (spec.attributes if kind == "attribute" else spec.aliases)[name] = value
            elif key in options:
                spec.options[key] = value
            else:
                known = ", ".join([*FIELDS, "attribute:<name>", "alias:<kind>", *options])
                raise ReplayError(f"unknown mapping key {key!r}; the keys are: {known}")
        return spec

    def columns(self) -> set[str]:
        return {*self.fields.values(), *self.attributes.values(), *self.aliases.values()}


@dataclass(frozen=True)
class ColumnMapping:
    """A mapping matched to a log's columns; ``fields`` turns one row into contract fields."""

    columns: dict[str, tuple[str, ...]]  # field -> the columns tried in turn
    attributes: dict[str, str] | None  # attribute name -> column; None: every column left over
    aliases: dict[str, str]  # alias kind -> column
    workflow: str | None  # for every row: wins over a workflow column (definitions are named by you)
    system: str | None  # for rows without a system of their own
    timestamps: TimestampParser

    @classmethod
    def for_headers(
        cls,
        headers: Sequence[str],
        spec: MappingSpec,
        *,
        workflow: str | None,
        system: str | None,
        timezone: str,
    ) -> ColumnMapping:
        """For a CSV header: explicit columns must exist, the rest is detected, required ones checked."""
        listing = ", ".join(repr(h) for h in headers)
        missing = sorted(spec.columns() - set(headers))
        if missing:
            raise ReplayError(
                f"the mapping names no such column: {', '.join(missing)}; the columns are: {listing}"
            )
        columns: dict[str, tuple[str, ...]] = {name: (column,) for name, column in spec.fields.items()}
        taken = spec.columns()
        by_name: dict[str, str] = {}
        for header in headers:
            by_name.setdefault(normalise(header), header)
        for name, candidates in DETECT.items():
            if name in columns or (name == "workflow" and workflow):
                continue
            for candidate in candidates:
                found = by_name.get(candidate)
                if found is not None and found not in taken:
                    columns[name] = (found,)
                    taken.add(found)
                    break
        for name in REQUIRED_COLUMNS:
            if name not in columns:
                raise ReplayError(
                    f"no column for {name}: map one with {name}=COLUMN; the columns are: {listing}"
                )
        for name, constant in (("workflow", workflow), ("system", system)):
            if name not in columns and not constant:
                raise ReplayError(
                    f"no {name}: map a column with {name}=COLUMN or give one {name} for every row; "
                    f"the columns are: {listing}"
                )
        leftover = len(set(headers) - taken)
        if not spec.attributes and leftover > MAX_ATTRIBUTES:
            # Every row would be refused for its attributes: say so once, before any row.
            raise ReplayError(
                f"{leftover} columns are left over as attributes, more than the {MAX_ATTRIBUTES} an event "
                "may carry: choose the ones to keep with attribute:<name>=<column>"
            )
        return cls._build(columns, spec, workflow, system, timezone)

    @classmethod
    def for_xes(
        cls, spec: MappingSpec, *, workflow: str | None, system: str | None, timezone: str
    ) -> ColumnMapping:
        """For XES: the standard extensions' keys, overridden by the mapping's explicit entries."""
        columns = {**XES_COLUMNS, **{name: (column,) for name, column in spec.fields.items()}}
        return cls._build(columns, spec, workflow, system, timezone)

    @classmethod
    def _build(
        cls,
        columns: dict[str, tuple[str, ...]],
        spec: MappingSpec,
        workflow: str | None,
        system: str | None,
        timezone: str,
    ) -> ColumnMapping:
        if workflow:
            columns.pop("workflow", None)
        return cls(
            columns=columns,
            attributes=dict(spec.attributes) or None,
            aliases=dict(spec.aliases),
            workflow=workflow or None,
            system=system or None,
            timestamps=TimestampParser(timezone, spec.options.get("timestamp_format")),
        )

    def fields(self, row: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The contract fields of one row, and the (field, reason) of values that could not be read.

        Values stay text where pydantic reads text the same way ingest does (numbers), so that
        validation, not this function, decides and words the reason.
        """
        values: dict[str, str] = {}
        source: dict[str, str] = {}  # field -> the column its value came from
        for name, columns in self.columns.items():
            for column in columns:
                text = (row.get(column) or "").strip()
                if text:
                    values[name] = text
                    source[name] = column
                    break
        used = set(source.values())
        fields: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for name in ("correlation_id", "step", "event_id", "duration_ms", "attempt", "amount", "currency"):
            if name in values:
                fields[name] = values[name]
        for name in ("trace_id", "span_id"):
            if name in values:
                fields[name] = values[name].lower()
        workflow = self.workflow or values.get("workflow")
        system = values.get("system") or self.system
        if workflow:
            fields["workflow"] = workflow
        if system:
            fields["system"] = system
        if "timestamp" in values:
            try:
                fields["timestamp"] = self.timestamps(values["timestamp"])
            except ValueError as error:
                problems.append(("timestamp", str(error)))
        if "status" in values:
            raw = values["status"]
            status = status_of(raw)
            if status is None:
                problems.append(("status", f"{raw!r} is not a status: {STATUS_HELP}"))
            else:
                fields["status"] = status
                if raw != status:  # a lifecycle word says more than the status: keep it as an attribute
                    used.discard(source["status"])
        if "error_kind" in values or "error_message" in values:
            failure = {"kind": values.get("error_kind"), "message": values.get("error_message", "")}
            fields["error"] = {key: value for key, value in failure.items() if value is not None}
        aliases = {kind: (row.get(column) or "").strip() for kind, column in self.aliases.items()}
        if any(aliases.values()):
            fields["aliases"] = {kind: key for kind, key in aliases.items() if key}
        if self.attributes is not None:
            attributes = {name: row.get(column) or "" for name, column in self.attributes.items()}
        else:
            skip = used | set(self.aliases.values())
            attributes = {column: value for column, value in row.items() if column not in skip}
        attributes = {name: value for name, value in attributes.items() if value.strip()}
        if attributes:
            fields["attributes"] = attributes
        return fields, problems
