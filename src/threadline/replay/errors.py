"""Why a replay stopped. A bad *row* is not an error (it is reported and skipped); these are not rows.

Every error carries the report of what was done before it, so the command line can say both
"this went wrong" and "this much was already imported" (events already sent stay imported; a
second run of the same file counts them as duplicates, never twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import ReplayReport, RowProblem


class ReplayError(Exception):
    """The replay cannot go on: unusable options, an unreadable file, an unreachable collector."""

    def __init__(self, message: str, report: ReplayReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class CollectorRefused(ReplayError):
    """The collector answered 400 to a batch that passed local validation.

    Local validation uses the collector's own model, so this is a bug (or a collector of another
    version): the whole batch was refused, since ingest is all-or-nothing, and nothing of it is stored.
    """

    def __init__(self, problems: Sequence[RowProblem], message: str, report: ReplayReport | None = None):
        super().__init__(message, report)
        self.problems = list(problems)
