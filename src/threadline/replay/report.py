"""What a replay did, and its text form for the command line."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_KEPT_PROBLEMS = 10_000  # a bad mapping can reject millions of rows; the count stays exact


@dataclass(frozen=True)
class RowProblem:
    """One reason one row was not imported.

    ``line`` is the physical line where the row starts (CSV: the header is line 1; XES: the
    ``<event>`` tag; OCEL JSON: the ``{`` of the event). ``ref`` says which record when a line is
    not enough (minified JSON puts every event on line 1), e.g. ``event #3 (id e3)``.
    """

    line: int
    field: str
    reason: str
    ref: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.ref}" if self.ref else "")
        return f"{where}: {self.field}: {self.reason}"


@dataclass
class ReplayReport:
    """Counts of a replay. ``imported`` + ``duplicates`` are the events the collector acknowledged.

    ``duplicates`` are events the store already had (a file replayed twice) or identical rows
    within the file (an event without an event id is identified by its content, as in ingest).
    ``skipped`` are records that are not business events (OCEL events related to no transaction);
    ``notes`` say why, and which choices were made for the user (the OCEL object type).
    """

    source: str
    format: str
    imported: int = 0
    duplicates: int = 0
    rejected: list[RowProblem] = field(default_factory=list)  # the first MAX_KEPT_PROBLEMS
    rejected_rows: int = 0
    problem_count: int = 0  # every problem, including those past MAX_KEPT_PROBLEMS
    skipped: int = 0
    batches: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every row of the file was imported (or already there)."""
        return self.rejected_rows == 0

    def add_problem(self, problem: RowProblem) -> None:
        self.problem_count += 1
        if len(self.rejected) < MAX_KEPT_PROBLEMS:
            self.rejected.append(problem)


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def format_report(report: ReplayReport, limit: int = 50) -> str:
    """A few lines for a person: the counts, then every bad row as ``line N: field: reason``.

    At most ``limit`` problems are listed, then ``and K more``, so a mapping that rejects every
    row does not flood the terminal; the counts above stay exact.
    """
    lines = [
        f"{report.source} ({report.format}): {report.imported} imported, "
        f"{_plural(report.duplicates, 'duplicate')}, {_plural(report.rejected_rows, 'row')} rejected, "
        f"{report.skipped} skipped, {_plural(report.batches, 'batch', 'batches')}"
    ]
    lines += [f"  {note}" for note in report.notes]
    shown = report.rejected[: max(limit, 0)]
    lines += [str(problem) for problem in shown]
    if report.problem_count > len(shown):
        lines.append(f"and {report.problem_count - len(shown)} more")
    missing = {p.field for p in report.rejected if p.reason == "is required"} & {"system", "workflow"}
    if missing:
        lines.append(
            "hint: "
            + "; ".join(
                f"no {name} for some rows: map a column ({name}=COLUMN) or pass a {name} for all rows"
                for name in sorted(missing)
            )
        )
    return "\n".join(lines)
