"""What every format reader produces: candidate events, each with the line it came from.

A reader turns its format into the *fields* of the business-event contract and does nothing
else: validation, batching and sending are shared (``importer``), so the three formats are held
to exactly the same rules as ``POST /v1/events``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """The fields of one would-be business event, before validation.

    ``position`` is the record's place in the file (1 for the first): with the file's content, it
    identifies an event the log gives no id (``importer.RowIdentity``).

    ``problems`` are (field, reason) found while reading (a timestamp that matches no format);
    such a field is left out of ``fields`` and validation's "is required" for it is not repeated.
    One record may give several candidates (an OCEL event related to two orders); they share
    ``line``, ``position`` and ``ref`` and count as one rejected row.
    """

    line: int
    position: int
    fields: dict[str, Any]
    problems: tuple[tuple[str, str], ...] = ()
    ref: str | None = None


@dataclass
class LogSource(ABC):
    """A log file being read. ``notes`` and ``skipped`` are filled in while ``candidates`` runs."""

    path: Path = field(init=False)  # set by each reader
    notes: list[str] = field(default_factory=list, init=False)
    skipped: int = field(default=0, init=False)

    @abstractmethod
    def candidates(self) -> Iterator[Candidate]:
        """Candidates in file order; raises ``ReplayError`` when the file cannot be read on."""
