"""``threadline replay FILE``: import a historical event log into the store, through ingest's validation.

Three formats: CSV with a column mapping (``csv_log``), IEEE XES (``xes``) and OCEL 2.0 JSON
(``ocel``). Every row is validated locally with the collector's own model, bad rows are reported
by line and the rest are sent to ``POST /v1/events`` in batches (``importer``).
"""

from __future__ import annotations

from .errors import CollectorRefused, ReplayError
from .importer import FORMATS, detect_format, replay
from .mapping import mapping_from_args
from .report import ReplayReport, RowProblem, format_report

__all__ = [
    "FORMATS",
    "CollectorRefused",
    "ReplayError",
    "ReplayReport",
    "RowProblem",
    "detect_format",
    "format_report",
    "mapping_from_args",
    "replay",
]
