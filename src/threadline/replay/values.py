"""Turning the text of a log into contract values: times (with a zone) and statuses.

Logs written for process mining rarely speak the contract's language: times without a zone,
in a local format, and lifecycle transitions (XES ``complete``, ``start``, ``ate_abort``) instead
of ``ok`` / ``error`` / ``retrying`` / ``pending``. This module is the one place that translates.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from .errors import ReplayError

# XES standard lifecycle model (IEEE 1849-2016, lifecycle extension) plus common spellings.
STATUS_WORDS: dict[str, str] = {
    # the contract's own values
    "ok": "ok",
    "error": "error",
    "retrying": "retrying",
    "pending": "pending",
    # finished: the step happened
    "complete": "ok",
    "completed": "ok",
    "success": "ok",
    "succeeded": "ok",
    "successful": "ok",
    "done": "ok",
    "autoskip": "ok",
    "manualskip": "ok",
    "unknown": "ok",  # XES: "no lifecycle information"; the event still happened
    # begun or waiting: not done yet
    "schedule": "pending",
    "scheduled": "pending",
    "assign": "pending",
    "reassign": "pending",
    "start": "pending",
    "started": "pending",
    "suspend": "pending",
    "resume": "pending",
    "in_progress": "pending",
    "waiting": "pending",
    # failed or given up
    "ate_abort": "error",
    "pi_abort": "error",
    "withdraw": "error",
    "abort": "error",
    "aborted": "error",
    "cancelled": "error",
    "canceled": "error",
    "fail": "error",
    "failed": "error",
    "failure": "error",
    # tried again
    "retry": "retrying",
    "retried": "retrying",
}

EPOCH_FORMATS = {"epoch": 1.0, "epoch_s": 1.0, "epoch_ms": 1e-3, "epoch_us": 1e-6}


def status_of(text: str) -> str | None:
    """The contract status for a status or lifecycle word (any case), or None if it is not one."""
    return STATUS_WORDS.get(text.strip().lower().replace("-", "_").replace(" ", "_"))


def zone_of(name: str) -> dt.tzinfo:
    """An IANA zone (``Europe/Berlin``) or ``UTC``; ``ReplayError`` for a name no one knows."""
    if name.upper() in ("UTC", "Z"):
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ReplayError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin") from None


class TimestampParser:
    """Parses a log's timestamps: ISO 8601 / RFC 3339 by default, or a ``strptime`` format.

    A time without a zone is read in ``zone`` (a CSV exported from a spreadsheet has local times).
    ``epoch``, ``epoch_ms`` and ``epoch_us`` read Unix times, which are always UTC.
    """

    def __init__(self, zone: str = "UTC", format: str | None = None) -> None:
        self.zone = zone_of(zone)
        self.format = format or None

    def __call__(self, text: str) -> dt.datetime:
        """The aware time; ``ValueError`` whose message is the reason shown to the user."""
        text = text.strip()
        if self.format in EPOCH_FORMATS:
            try:
                seconds = float(text) * EPOCH_FORMATS[self.format]
                return dt.datetime.fromtimestamp(seconds, dt.UTC)
            except (ValueError, OverflowError, OSError):
                raise ValueError(f"{text!r} is not a Unix time ({self.format})") from None
        if self.format:
            try:
                value = dt.datetime.strptime(text, self.format)
            except ValueError as error:
                # strptime says either "does not match" (our words say it better) or what is wrong.
                detail = "" if str(error).startswith(("time data", "unconverted data")) else f" ({error})"
                raise ValueError(f"{text!r} is not a time in the format {self.format!r}{detail}") from None
        else:
            try:
                value = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not an ISO 8601 time (pass timestamp_format=... for another format)"
                ) from None
        return value if value.tzinfo is not None else value.replace(tzinfo=self.zone)
