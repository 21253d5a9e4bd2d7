"""Shareable URLs: every page, filter and selection is in the path and query string.

A link copied from the address bar opens the same view for someone else, so pages read their state
from here (``Query``) and controls write it back here (``href``) rather than keeping it in the browser.

Pages name each other by their page paths (``QUEUE``, ``transaction_path(key)``); ``href`` turns one
into the link the browser follows, under the base path the dashboard is served at behind a proxy
(``--base-path /threadline/``), and the router reads the URL back with ``page_path``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlencode

from .formatting import parse_time

OVERVIEW = "/"
QUEUE = "/queue"
ALERTS = "/alerts"
SYSTEMS = "/systems"
TRANSACTIONS = "/transactions/"
WORKFLOWS = "/workflows/"

# Time-range presets: query value -> (label, length; None for all time).
RANGES: dict[str, tuple[str, dt.timedelta | None]] = {
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "24h": ("Last 24 hours", dt.timedelta(days=1)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
    "all": ("All time", None),
}
DEFAULT_RANGE = "7d"
# The base path, set once by create_app before any page is drawn ("/": served at the root).
_base_path = "/"
_AGE = re.compile(r"^(\d+)([mhd])$")


@dataclass(frozen=True)
class Query:
    """The query string of the current URL, read leniently: a bad value falls back to the default."""

    values: Mapping[str, str]

    @classmethod
    def parse(cls, search: str | None) -> Query:
        parsed = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
        return cls({name: values[-1] for name, values in parsed.items()})

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default).strip() or default

    def list(self, name: str) -> list[str]:
        return [part for part in (p.strip() for p in self.get(name).split(",")) if part]

    def range_key(self) -> str:
        key = self.get("range", DEFAULT_RANGE)
        return key if key in RANGES else DEFAULT_RANGE

    def window(self, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(since, until) for the API: explicit ``since``/``until`` win over the ``range`` preset."""
        since, until = _time(self.get("since")), _time(self.get("until"))
        if since or until:
            return since, until
        length = RANGES[self.range_key()][1]
        # From the start of the minute: the same page asks the same question for a minute, so the
        # collector can share one answer between the people looking at it (shared_reads.py).
        return ((now - length).replace(second=0, microsecond=0) if length else None), None

    def with_(self, **changes: str | builtins.list[str] | None) -> dict[str, str]:  # `list` is a method here
        """These values with some changed (None or empty removes one), ready for ``href``."""
        merged = dict(self.values)
        for name, value in changes.items():
            text = ",".join(value) if isinstance(value, list) else value
            if text:
                merged[name] = text
            else:
                merged.pop(name, None)
        return merged


def _time(value: str) -> dt.datetime | None:
    try:
        moment = parse_time(value)
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def age_seconds(value: str) -> float | None:
    """A minimum age filter ("30m", "4h", "2d") in seconds; None when absent or malformed."""
    match = _AGE.match(value.strip())
    if not match:
        return None
    return int(match[1]) * {"m": 60, "h": 3600, "d": 86400}[match[2]]


def set_base_path(base_path: str) -> None:
    """Serve the pages under ``base_path`` ("/threadline/"; "/" for the root)."""
    global _base_path
    _base_path = base_path


def href(path: str, params: Mapping[str, str] | None = None) -> str:
    """The link to a page path (under the base path) with its query string, parameters sorted so
    that equal views have equal URLs; an empty path: the query string alone, for the current page."""
    link = _base_path + path.removeprefix("/") if path else ""
    cleaned = {name: value for name, value in sorted((params or {}).items()) if value}
    return f"{link}?{urlencode(cleaned, safe=',:')}" if cleaned else link


def page_path(pathname: str) -> str:
    """The page path of a URL's path: the base path taken off ("/threadline/queue" -> "/queue")."""
    return "/" + pathname.removeprefix(_base_path) if pathname.startswith(_base_path) else pathname


def search_of(params: Mapping[str, str]) -> str:
    """The ``?...`` part alone (empty when there are no parameters), as ``dcc.Location.search`` holds it."""
    return href("", params)


def transaction_path(key: str) -> str:
    """The detail page of any key; a key may hold "/" or spaces, so it is escaped whole."""
    return TRANSACTIONS + quote(key, safe="")


def alert_path(alert_id: str) -> str:
    """The Alerts page with one alert's detail open: the link alert notifications carry."""
    return href(ALERTS, {"alert": alert_id})


def workflow_path(name: str) -> str:
    """The process map of a workflow."""
    return WORKFLOWS + quote(name, safe="")


def tail(pathname: str, prefix: str) -> str:
    """The decoded rest of a path after its prefix: "/transactions/SO%2F1" -> "SO/1".

    Nothing is trimmed: a key may begin or end with a space, and the path carries it encoded.
    """
    return unquote(pathname[len(prefix) :])
