"""The replay itself: read a log, validate every row as ingest would, send the good ones in batches.

A row the log gives no id gets one from the log's identity and the row's place in it
(``RowIdentity``), so replaying the same log again, with any mapping, stores nothing twice, and
two identical rows of a log are two events, as process-mining tools count them.

The collector takes a batch all or nothing, so one bad row would sink a thousand good ones.
Every row is therefore validated here first, with the collector's own model
(``validate_event``); bad rows are reported by line and left out, the rest are sent. A batch
the collector still refuses means the two validations differ, which is a bug: the replay stops
and says so (``CollectorRefused``) rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from pydantic import ValidationError

from threadline.collector.schema import problems_of, validate_event
from threadline.contract.event import MAX_EVENTS_PER_BATCH

from .csv_log import CsvLog
from .errors import CollectorRefused, ReplayError
from .files import content_digest
from .ocel import OcelLog
from .report import ReplayReport, RowProblem
from .sender import BatchRefused, BatchTooLarge, CollectorClient
from .source import Candidate, LogSource
from .xes import XesLog

FORMATS = ("csv", "xes", "ocel")
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".xes": "xes", ".jsonocel": "ocel", ".json": "ocel"}
DEFAULT_BATCH = 1000


def detect_format(path: Path) -> str:
    """The format from the file name: ``.csv``, ``.xes``, ``.jsonocel`` / ``.json``, each maybe ``.gz``."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, format in SUFFIXES.items():
        if name.endswith(suffix):
            return format
    raise ReplayError(
        f"cannot tell the format of {path.name} from its name: pass a format ({', '.join(FORMATS)})"
    )


def open_source(
    path: Path,
    format: str,
    *,
    mapping: Mapping[str, str] | None,
    workflow: str | None,
    system: str | None,
    object_type: str | None,
    timezone: str,
) -> LogSource:
    """The reader for ``format``; options that mean nothing for it are refused, not ignored."""
    if format == "ocel":
        if mapping:
            raise ReplayError("a column mapping applies to CSV and XES logs, not to OCEL")
        return OcelLog(path, object_type=object_type, workflow=workflow, system=system, timezone=timezone)
    if object_type:
        raise ReplayError("object_type applies to OCEL logs only")
    reader = CsvLog if format == "csv" else XesLog
    return reader(path, mapping, workflow=workflow, system=system, timezone=timezone)


@dataclass(frozen=True)
class RowIdentity:
    """The event id of a row without one: the log's content digest and the row's position in it.

    The content, not the name or the path: a log renamed, moved or compressed is the same log, and
    a re-run is idempotent whatever the mapping (the same rows are the same events); a log with
    other rows is another log. The position, zero-padded so that ids sort in file order (ties in
    event time that the store breaks by event id then keep file order too), keeps identical rows
    apart. 128 bits of the digest: two different logs never share it by chance.
    """

    digest: str

    @classmethod
    def of(cls, path: Path) -> RowIdentity:
        return cls(content_digest(path)[:32])

    def event_id(self, position: int) -> str:
        return f"replay:{self.digest}:{position:012d}"


class Importer:
    """Runs one replay: candidates in, validated batches out, every outcome counted in ``report``."""

    def __init__(
        self,
        source: LogSource,
        collector: CollectorClient,
        report: ReplayReport,
        batch_size: int = DEFAULT_BATCH,
        identity: RowIdentity | None = None,
    ) -> None:
        self.source = source
        self.collector = collector
        self.report = report
        self.batch_size = batch_size
        self.identity = identity or RowIdentity.of(source.path)
        self._row: tuple[int, str | None] | None = None  # the last rejected row
        self._row_problems: set[tuple[str, str]] = set()

    def run(self) -> ReplayReport:
        pending: list[tuple[Candidate, bytes]] = []
        broken: ReplayError | None = None  # the file could not be read to its end
        candidates = self.source.candidates()
        try:
            while True:
                try:
                    candidate = next(candidates, None)
                except ReplayError as error:  # what was read before the damage is still imported
                    broken, candidate = error, None
                if candidate is None:
                    break
                event = self._validate(candidate)
                if event is not None:
                    pending.append((candidate, event))
                    if len(pending) >= self.batch_size:
                        self._send(pending)
                        pending = []
            self._send(pending)
        except ReplayError as error:  # the collector: nothing more can be sent
            error.report = self.report
            raise
        finally:
            self.report.notes.extend(self.source.notes)
            self.report.skipped = self.source.skipped
        if broken is not None:
            broken.report = self.report
            raise broken
        return self.report

    def _validate(self, candidate: Candidate) -> bytes | None:
        """The event as the JSON ingest will read, or None after recording why the row is rejected."""
        problems = list(candidate.problems)
        encoded = None
        if candidate.fields:  # no fields: the reader could not even split the row
            fields = candidate.fields
            if "event_id" not in fields:
                fields = {**fields, "event_id": self.identity.event_id(candidate.position)}
            try:
                event = validate_event(fields)
                encoded = orjson.dumps(event.model_dump(mode="json", exclude_none=True))  # once, here
            except ValidationError as error:
                reported = {field for field, _ in problems}
                problems += [(p.field, p.reason) for p in problems_of(error) if p.field not in reported]
        if not problems:
            return encoded
        row = (candidate.line, candidate.ref)
        if row != self._row:  # the candidates of one record (OCEL) come together and count once
            self._row, self._row_problems = row, set()
            self.report.rejected_rows += 1
        for field, reason in problems:
            if (field, reason) not in self._row_problems:
                self._row_problems.add((field, reason))
                self.report.add_problem(RowProblem(candidate.line, field, reason, candidate.ref))
        return None

    def _send(self, batch: list[tuple[Candidate, bytes]]) -> None:
        if not batch:
            return
        try:
            answer = self.collector.send([event for _, event in batch])
        except BatchTooLarge as error:
            if len(batch) == 1:
                line = batch[0][0].line
                raise ReplayError(
                    f"line {line}: this one event is larger than the collector accepts ({error})"
                ) from None
            half = len(batch) // 2
            self._send(batch[:half])
            self._send(batch[half:])
            return
        except BatchRefused as refused:
            problems = []
            for problem in refused.problems:
                index = problem.get("index")
                candidate = (
                    batch[index][0] if isinstance(index, int) and 0 <= index < len(batch) else batch[0][0]
                )
                problems.append(
                    RowProblem(
                        candidate.line, str(problem.get("field")), str(problem.get("reason")), candidate.ref
                    )
                )
            listing = "; ".join(str(p) for p in problems[:20]) or str(refused)
            raise CollectorRefused(
                problems,
                f"the collector refused a batch of {len(batch)} events that passed local validation, so "
                "nothing of that batch was stored. Local validation uses the collector's own model: "
                "this is a bug, or the collector runs another version of Threadline. "
                f"It said: {refused}. {listing}",
                self.report,
            ) from None
        self.report.imported += answer.accepted
        self.report.duplicates += answer.duplicates
        self.report.batches += 1


def replay(
    path: Path,
    endpoint: str,
    *,
    format: str | None = None,
    mapping: dict[str, str] | None = None,
    workflow: str | None = None,
    system: str | None = None,
    object_type: str | None = None,
    api_key: str | None = None,
    timezone: str = "UTC",
    batch_size: int = DEFAULT_BATCH,
    client: httpx.Client | None = None,
) -> ReplayReport:
    """Import the event log at ``path`` into the collector at ``endpoint`` (``http://host:4318``).

    ``format`` is ``csv``, ``xes`` or ``ocel`` (default: from the file name, ``.gz`` allowed);
    ``mapping`` is the column mapping (``mapping`` module; CSV and XES); ``workflow`` is the
    workflow of every event (it wins over the file's); ``system`` is the system of events that
    name none; ``object_type`` is the OCEL object type whose objects are the transactions;
    ``timezone`` is the zone of times written without one. ``client`` is an ``httpx.Client`` to
    use instead of a new one (custom TLS, proxies, tests).

    Bad rows are in the report, by line; raises ``ReplayError`` (its ``report`` says what was
    imported before) when the options, the file or the collector do not allow going on.
    """
    path = Path(path)
    if not path.is_file():
        raise ReplayError(f"no such file: {path}")
    chosen = (format or detect_format(path)).lower()
    if chosen not in FORMATS:
        raise ReplayError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")
    if not 1 <= batch_size <= MAX_EVENTS_PER_BATCH:
        raise ReplayError(f"batch_size must be between 1 and {MAX_EVENTS_PER_BATCH}")
    source = open_source(
        path,
        chosen,
        mapping=mapping,
        workflow=workflow,
        system=system,
        object_type=object_type,
        timezone=timezone,
    )
    report = ReplayReport(source=path.name, format=chosen)
    with CollectorClient(endpoint, api_key, client=client) as collector:
        return Importer(source, collector, report, batch_size).run()
