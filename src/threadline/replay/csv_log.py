"""CSV event logs: one row per event, a header naming the columns, and a column mapping.

Rows are read as a stream (a log of millions of rows never sits in memory). A row's line is
the physical line it starts on, counting the header as line 1, so a quoted value spanning
lines does not shift the numbers of the rows after it: that is what an editor shows.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .errors import ReplayError
from .files import open_binary
from .mapping import CSV_OPTIONS, ColumnMapping, MappingSpec
from .source import Candidate, LogSource

DELIMITERS = (",", ";", "\t", "|")


class LineReader(Protocol):
    """``csv.reader``'s type: rows, and how many physical lines were read so far."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def guess_delimiter(header_line: str) -> str:
    """The delimiter used most in the header line (spreadsheets in many locales write ``;``)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # ties: the earlier one, ","
    return best if counts[best] else ","


def unique_headers(raw: Sequence[str]) -> list[str]:
    """Header names, trimmed; a blank one becomes ``column N`` and a repeated one ``name.2``."""
    seen: dict[str, int] = {}
    headers = []
    for number, header in enumerate(raw, start=1):
        name = header.strip() or f"column {number}"
        seen[name] = seen.get(name, 0) + 1
        headers.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    return headers


class CsvLog(LogSource):
    """A CSV file read through a column mapping (see ``mapping`` for the syntax and the defaults)."""

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
        self.spec = MappingSpec.parse(mapping, CSV_OPTIONS)
        self.workflow = workflow
        self.system = system
        self.timezone = timezone
        self.encoding = self.spec.options.get("encoding", "utf-8-sig")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ReplayError(f"unknown encoding {self.encoding!r}") from None
        delimiter = self.spec.options.get("delimiter")
        if delimiter is not None and len(delimiter.replace("\\t", "\t")) != 1:
            raise ReplayError(f"delimiter must be one character, not {delimiter!r}")
        self.delimiter = delimiter.replace("\\t", "\t") if delimiter else None

    def candidates(self) -> Iterator[Candidate]:
        with open_binary(self.path) as raw, io.TextIOWrapper(raw, self.encoding, newline="") as text:
            reader: LineReader | None = None
            try:
                first = text.readline()
                if not first.strip():
                    raise ReplayError(f"{self.path.name} has no header line")
                delimiter = self.delimiter or guess_delimiter(first)
                reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
                headers = unique_headers(next(reader))
                mapping = ColumnMapping.for_headers(
                    headers, self.spec, workflow=self.workflow, system=self.system, timezone=self.timezone
                )
                yield from self._rows(reader, headers, mapping)
            except UnicodeDecodeError:  # text is decoded ahead of the rows: the line is a lower bound
                line = reader.line_num + 1 if reader else 1
                raise ReplayError(
                    f"{self.path.name} is not {self.encoding} text (at line {line} or a little after); "
                    "pass encoding=... in the mapping (e.g. cp1252)"
                ) from None
            except csv.Error as error:
                line = reader.line_num if reader else 1
                raise ReplayError(f"line {line}: cannot read the CSV on: {error}") from None

    def _rows(self, reader: LineReader, headers: list[str], mapping: ColumnMapping) -> Iterator[Candidate]:
        start = reader.line_num + 1
        for position, record in enumerate(reader, start=1):
            line, start = start, reader.line_num + 1
            if not any(value.strip() for value in record):
                continue  # a blank line is no row
            if len(record) != len(headers):
                reason = f"has {len(record)} values but the header has {len(headers)} columns"
                yield Candidate(line, position, {}, (("row", reason),))
                continue
            fields, problems = mapping.fields(dict(zip(headers, record, strict=True)))
            yield Candidate(line, position, fields, tuple(problems))
