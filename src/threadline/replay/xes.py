"""IEEE XES (1849-2016) event logs, ``.xes`` or ``.xes.gz``, read as a stream with line numbers.

The standard extensions give the mapping: the trace's ``concept:name`` is the correlation id,
the event's ``concept:name`` the step, ``time:timestamp`` the time, ``org:resource`` (else
``org:group``) the system, ``lifecycle:transition`` the status (complete → ok, start → pending,
ate_abort / pi_abort → error, see ``values``) and ``identity:id`` the event id. The workflow is
the ``workflow`` option, else the log's ``concept:name``. Every other event attribute, and every
trace attribute as ``case:<key>``, becomes an attribute; a mapping (``mapping``) can point any
field at any of those keys instead (``amount=case:AMOUNT_REQ``).

Parsed with expat (the parser under ``xml.etree``) fed in chunks, so a log of any size streams,
and because expat, unlike ``iterparse``, tells the line of each ``<event>`` tag. Only one trace
is held at a time. ``<global>`` defaults, ``<extension>`` and ``<classifier>`` declarations,
and nested attributes (``list``, ``container``, meta-attributes) are not imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from .errors import ReplayError
from .files import open_binary
from .mapping import XES_OPTIONS, ColumnMapping, MappingSpec
from .source import Candidate, LogSource

ATTRIBUTE_TAGS = frozenset({"string", "date", "int", "float", "boolean", "id", "list", "container"})
CHUNK_BYTES = 1 << 16


@dataclass
class _Trace:
    line: int
    attributes: dict[str, str] = field(default_factory=dict)
    events: list[tuple[int, int, dict[str, str]]] = field(default_factory=list)  # line, position, attributes


def _local(name: str) -> str:
    return name.rpartition(":")[2]


class XesLog(LogSource):
    """An XES log; ``workflow`` overrides the log's name, ``system`` serves events with no resource."""

    def __init__(
        self,
        path: Path,
        mapping: Mapping[str, str] | None = None,
        *,
        workflow: str | None = None,
        system: str | None = None,
        timezone: str = "UTC",
    ) -> None:
        super().__init__()
        self.path = path
        self.spec = MappingSpec.parse(mapping, XES_OPTIONS)
        self.workflow = workflow
        self.system = system
        self.timezone = timezone
        ColumnMapping.for_xes(
            self.spec, workflow=None, system=system, timezone=timezone
        )  # options fail early

    def candidates(self) -> Iterator[Candidate]:
        parser = expat.ParserCreate()
        walker = _Walker(self, parser)
        parser.StartElementHandler = walker.start
        parser.EndElementHandler = walker.end
        with open_binary(self.path) as stream:
            try:
                while chunk := stream.read(CHUNK_BYTES):
                    parser.Parse(chunk, False)
                    yield from walker.drain()
                parser.Parse(b"", True)
            except expat.ExpatError as error:
                yield from walker.drain()  # every trace that ended before the damage is imported
                reason = expat.ErrorString(error.code)
                raise ReplayError(
                    f"line {error.lineno}: {self.path.name} is not well-formed XML: {reason}"
                ) from None
            except (OSError, EOFError) as error:  # a truncated or corrupt .gz
                yield from walker.drain()
                raise ReplayError(f"{self.path.name} cannot be read to the end: {error}") from None
        yield from walker.drain()
        if self.skipped:
            self.notes.append(f"{self.skipped} event(s) outside any trace belong to no transaction: skipped")

    def mapping_for(self, log_name: str | None) -> ColumnMapping:
        workflow = self.workflow or log_name
        if not workflow and "workflow" not in self.spec.fields:
            raise ReplayError(
                f"{self.path.name} has no log concept:name to use as the workflow; pass a workflow"
            )
        return ColumnMapping.for_xes(self.spec, workflow=workflow, system=self.system, timezone=self.timezone)


class _Walker:
    """Expat callbacks: follows log → trace → event and queues the candidates of finished traces."""

    def __init__(self, log: XesLog, parser: expat.XMLParserType) -> None:
        self.log = log
        self.parser = parser
        self.stack: list[str] = []
        self.ignore_from: int | None = None  # depth of an element whose content is not imported
        self.log_name: str | None = None
        self.mapping: ColumnMapping | None = None
        self.trace: _Trace | None = None
        self.event: tuple[int, int, dict[str, str]] | None = None
        self.events_seen = 0  # the position of the last <event> of a trace, in the file
        self.ready: list[Candidate] = []

    def drain(self) -> Iterator[Candidate]:
        ready, self.ready = self.ready, []
        yield from ready

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        name = _local(tag)
        depth = len(self.stack)
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        if self.ignore_from is not None:
            return
        if depth == 0:
            if name != "log":
                raise ReplayError(f"{self.log.path.name} is not an XES log: its root element is <{tag}>")
        elif name in ATTRIBUTE_TAGS and parent in ("log", "trace", "event"):
            self._attribute(parent, name, attributes)
            self.ignore_from = depth  # nested (meta-)attributes are not imported
        elif parent == "log" and name == "trace":
            self.trace = _Trace(self.parser.CurrentLineNumber)
        elif parent == "trace" and name == "event":
            self.events_seen += 1
            self.event = (self.parser.CurrentLineNumber, self.events_seen, {})
        else:
            if parent == "log" and name == "event":
                self.log.skipped += 1  # an event outside any trace belongs to no transaction
            self.ignore_from = depth  # <global>, <extension>, <classifier>, anything unknown

    def _attribute(self, parent: str, kind: str, attributes: dict[str, str]) -> None:
        key, value = attributes.get("key"), attributes.get("value")
        if key is None or value is None:
            return  # list and container have no value of their own
        if kind == "boolean":
            value = value.strip().lower()
        if parent == "log":
            if key == "concept:name":
                self.log_name = value.strip() or None
        elif parent == "trace" and self.trace is not None:
            self.trace.attributes[key] = value
        elif parent == "event" and self.event is not None:
            self.event[2][key] = value

    def end(self, tag: str) -> None:
        name = self.stack.pop()
        if self.ignore_from is not None:
            if len(self.stack) == self.ignore_from:
                self.ignore_from = None
            return
        if name == "event" and self.event is not None and self.trace is not None:
            self.trace.events.append(self.event)
            self.event = None
        elif name == "trace" and self.trace is not None:
            self._finish(self.trace)
            self.trace = None

    def _finish(self, trace: _Trace) -> None:
        if self.mapping is None:
            self.mapping = self.log.mapping_for(self.log_name)
        case = {f"case:{key}": value for key, value in trace.attributes.items()}
        for line, position, attributes in trace.events:
            fields, problems = self.mapping.fields({**case, **attributes})
            self.ready.append(Candidate(line, position, fields, tuple(problems)))
