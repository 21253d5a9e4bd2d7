"""Schema drift: a system stops sending an attribute its events had, or starts sending a new one.

Per system and step, the engine counts at insert time how many events carried each attribute key,
per hour (``attribute_presence``, migration 17). Drift is read from those rows, a few hundred per
hour whatever the traffic, and from the events only to place the change exactly, for the few
attributes the rows point at:

- **missing**: ``plan`` was in at least ``usual`` of the (at least ``min_before``) events of the
  ``baseline`` before the last event that carried it, and none of the (at least ``min_since``)
  events since has it. It starts at the first event without it; one event carrying it again ends it.
- **new**: ``plan_id`` first appeared after a ``baseline`` of (at least ``min_before``) events
  without it, and at least ``new_share`` of the (at least ``min_since``) events since carry it.

A drift is shown for one ``baseline`` after it starts; by then it is what the system usually
sends. Rows are hourly: the answer is as of the end of ``as_of``'s hour (for now, the same thing).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..models import DriftExample, SchemaDrift, SchemaDriftReport
from ..storage import Store
from ..storage.aggregates import EVENT_KEYS
from .transactions import utc

logger = logging.getLogger("threadline.collector")

HOUR = dt.timedelta(hours=1)
EVERY_EVENT = ""  # the presence key that counts every event of a step


@dataclass(frozen=True)
class DriftSettings:
    baseline: dt.timedelta = dt.timedelta(days=7)
    min_before: int = 200
    min_since: int = 20
    usual: float = 0.95  # share of the events before that carried an attribute now missing
    new_share: float = 0.5  # share of the events since that carry a new attribute
    max_checked: int = 50  # attributes placed exactly per call: the ones the most events point at


# Per system, step and attribute key, its hourly counts (an hour may come in several rows, not yet
# merged), the first and the latest time an event carried it; two baselines back, so that an
# attribute new in the last baseline has a whole one before it.
PRESENCE = """
SELECT system, step, attribute,
       groupArray(hour) AS hours,
       groupArray(events) AS counts,
       min(first_seen) AS first_seen,
       max(last_seen) AS last_seen
FROM attribute_presence
WHERE tenant = {tenant:String} AND hour >= {since:DateTime('UTC')} AND hour < {until:DateTime('UTC')}
GROUP BY system, step, attribute
"""

# The events of one step from a moment on: how many, how many in that moment's hour, the first,
# the first that carries the attribute.
EVENTS_FROM = f"""
SELECT count() AS events,
       countIf(timestamp < {{hour_end:DateTime64(6, 'UTC')}}) AS in_hour,
       min((timestamp, event_id, correlation_id)) AS first,
       minIf((timestamp, event_id, correlation_id), has({EVENT_KEYS}, {{attribute:String}})) AS first_carrying
FROM events
WHERE tenant = {{tenant:String}} AND system = {{system:String}} AND step = {{step:String}}
  AND timestamp >= {{start:DateTime64(6, 'UTC')}} AND timestamp < {{until:DateTime64(6, 'UTC')}}
"""


@dataclass(frozen=True)
class _Seen:
    """One attribute of one system's step, over the rows read."""

    system: str
    step: str
    attribute: str
    hours: Mapping[dt.datetime, int]  # events carrying it, per hour
    totals: Mapping[dt.datetime, int]  # events of the step, per hour
    first: dt.datetime  # the first event that carried it
    last: dt.datetime  # the latest

    def total(self, start: dt.datetime, end: dt.datetime) -> int:
        """Events of the step in the hours [start, end)."""
        return sum(n for hour, n in self.totals.items() if start <= hour < end)

    def carried(self, start: dt.datetime, end: dt.datetime) -> int:
        return sum(n for hour, n in self.hours.items() if start <= hour < end)


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _per_hour(row: dict[str, Any]) -> dict[dt.datetime, int]:
    counts: dict[dt.datetime, int] = {}
    for hour, n in zip(row["hours"], row["counts"], strict=True):
        counts[utc(hour)] = counts.get(utc(hour), 0) + n
    return counts


def _seen(rows: list[dict[str, Any]]) -> Iterator[_Seen]:
    totals = {(r["system"], r["step"]): _per_hour(r) for r in rows if r["attribute"] == EVERY_EVENT}
    for row in rows:
        if row["attribute"] != EVERY_EVENT:
            yield _Seen(
                row["system"],
                row["step"],
                row["attribute"],
                _per_hour(row),
                totals.get((row["system"], row["step"]), {}),
                utc(row["first_seen"]),
                utc(row["last_seen"]),
            )


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0%"


def _drift(
    seen: _Seen, kind: str, example: tuple[dt.datetime, str, str], counts: tuple[int, int, int, int]
) -> SchemaDrift:
    """``example``: (time, event id, correlation id) of the first event without it (missing), or
    with it (new)."""
    events_since, carrying_since, events_before, carrying_before = counts
    start = utc(example[0])
    if kind == "missing":
        summary = (
            f"{seen.system} / {seen.step}: `{seen.attribute}` missing since {start:%Y-%m-%d %H:%M} UTC, "
            f"in 100% of {events_since:,} events; present in {_share(carrying_before, events_before)} "
            f"of the {events_before:,} before"
        )
    else:
        summary = (
            f"{seen.system} / {seen.step}: `{seen.attribute}` new since {start:%Y-%m-%d %H:%M} UTC, "
            f"in {_share(carrying_since, events_since)} of {events_since:,} events; "
            f"absent from the {events_before:,} before"
        )
    return SchemaDrift(
        system=seen.system,
        step=seen.step,
        attribute=seen.attribute,
        kind=kind,  # type: ignore[arg-type]  # "missing" or "new", set by the caller
        since=start,
        events_since=events_since,
        carrying_since=carrying_since,
        events_before=events_before,
        carrying_before=carrying_before,
        last_carried=seen.last if kind == "missing" else None,
        example=DriftExample(time=start, event_id=example[1], correlation_id=example[2]),
        summary=summary,
    )


class _Detector:
    def __init__(self, store: Store, tenant: str, as_of: dt.datetime, settings: DriftSettings) -> None:
        self.store = store
        self.tenant = tenant
        self.settings = settings
        self.until = _hour(as_of) + HOUR  # the rows are hourly: as of the end of as_of's hour
        self.shown_since = as_of - settings.baseline

    def _events_from(self, seen: _Seen, start: dt.datetime, until: dt.datetime) -> dict[str, Any]:
        parameters = {
            "tenant": self.tenant,
            "system": seen.system,
            "step": seen.step,
            "attribute": seen.attribute,
            "start": start,
            "hour_end": _hour(start) + HOUR,
            "until": until,
        }
        return self.store.rows(EVENTS_FROM, parameters)[0]

    def _enough(self, events_since: int, events_before: int) -> bool:
        """Enough events on both sides of a change to call it a drift."""
        return events_since >= self.settings.min_since and events_before >= self.settings.min_before

    def possibly_missing(self, seen: _Seen) -> int:
        """How many events may lack it since it was last seen, when the hourly rows allow a drift
        (else 0): bounds, which ``place_missing`` makes exact."""
        last = seen.last
        if last < self.shown_since:
            return 0
        hour = _hour(last)
        lacking_in_hour = seen.totals.get(hour, 0) - seen.hours.get(hour, 0)
        after = seen.total(hour + HOUR, self.until) + lacking_in_hour
        before = seen.total(_hour(last - self.settings.baseline), hour + HOUR)
        carried = seen.carried(_hour(last - self.settings.baseline), hour + HOUR)
        if not self._enough(after, before) or carried < self.settings.usual * (before - lacking_in_hour):
            return 0
        return after

    def place_missing(self, seen: _Seen) -> SchemaDrift | None:
        last = seen.last
        hour = _hour(last)
        baseline_start = _hour(last - self.settings.baseline)
        since = self._events_from(seen, last + dt.timedelta(microseconds=1), self.until)
        events_since = int(since["events"])
        events_before = seen.total(baseline_start, hour + HOUR) - int(since["in_hour"])
        carrying_before = seen.carried(baseline_start, hour + HOUR)
        if (
            not self._enough(events_since, events_before)
            or carrying_before < self.settings.usual * events_before
        ):
            return None
        return _drift(seen, "missing", since["first"], (events_since, 0, events_before, carrying_before))

    def possibly_new(self, seen: _Seen) -> int:
        """How many events may have come since it first appeared, when the hourly rows allow a
        drift (else 0)."""
        first = seen.first
        if first < self.shown_since:
            return 0
        hour = _hour(first)
        carried_in_hour = seen.hours.get(hour, 0)  # all from its first event on
        since = seen.total(hour, self.until)
        since_at_least = seen.total(hour + HOUR, self.until) + carried_in_hour
        before = seen.total(_hour(first - self.settings.baseline), hour + HOUR) - carried_in_hour
        carrying = seen.carried(hour, self.until)
        if not self._enough(since, before) or carrying < self.settings.new_share * since_at_least:
            return 0
        return since

    def place_new(self, seen: _Seen) -> SchemaDrift | None:
        first = seen.first
        hour = _hour(first)
        placed = self._events_from(seen, first, hour + HOUR)
        in_hour = int(placed["events"])
        events_since = seen.total(hour + HOUR, self.until) + in_hour
        events_before = seen.total(_hour(first - self.settings.baseline), hour + HOUR) - in_hour
        carrying_since = seen.carried(hour, self.until)
        if (
            not self._enough(events_since, events_before)
            or carrying_since < self.settings.new_share * events_since
        ):
            return None
        return _drift(seen, "new", placed["first_carrying"], (events_since, carrying_since, events_before, 0))


def subject(drift: SchemaDrift) -> str:
    """What an alert on this drift is about: one per system, step, attribute and kind."""
    return f"{drift.system} / {drift.step} / {drift.attribute} ({drift.kind})"


def system_of(subject: str) -> str:
    return subject.partition(" / ")[0]


def detect(
    store: Store, tenant: str, as_of: dt.datetime, settings: DriftSettings | None = None
) -> SchemaDriftReport:
    """The tenant's schema drifts as of ``as_of``, the newest first."""
    settings = settings or DriftSettings()
    detector = _Detector(store, tenant, as_of, settings)
    parameters = {
        "tenant": tenant,
        "since": _hour(as_of - 2 * settings.baseline),
        "until": detector.until,
    }
    candidates: list[tuple[int, str, _Seen]] = []
    for seen in _seen(store.rows(PRESENCE, parameters)):
        if possible := detector.possibly_missing(seen):
            candidates.append((possible, "missing", seen))
        if possible := detector.possibly_new(seen):
            candidates.append((possible, "new", seen))
    candidates.sort(key=lambda c: (-c[0], c[2].system, c[2].step, c[2].attribute))
    if len(candidates) > settings.max_checked:
        logger.warning(
            "threadline: %d possible schema drifts of %r; the %d with the most events are checked",
            len(candidates),
            tenant,
            settings.max_checked,
        )
    drifts = [
        drift
        for _, kind, seen in candidates[: settings.max_checked]
        if (drift := detector.place_missing(seen) if kind == "missing" else detector.place_new(seen))
    ]
    drifts.sort(key=lambda d: (-d.since.timestamp(), d.system, d.step, d.attribute))
    return SchemaDriftReport(
        as_of=as_of,
        baseline_days=settings.baseline.total_seconds() / 86400,
        min_before=settings.min_before,
        min_since=settings.min_since,
        drifts=drifts,
    )
