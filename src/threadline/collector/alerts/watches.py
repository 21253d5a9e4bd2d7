"""When each alert rule started watching a tenant, and what already met it then (its baseline).

A rule watches from the first evaluation that sees it (by name and definition: changing what it
measures starts a new watch). What already met a per-transaction rule at that moment is history,
not news: it is summarised once on the rule (``already_holding``, the first few transactions, shown
on the Alerts page) and its transactions form the rule's baseline, never fired one by one. A
baseline transaction that stops meeting the rule (it completes, an operator resolves it) leaves the
baseline, so meeting the rule again is news and fires.

Also here: each tenant's evaluation cursor, the moment its last evaluation covered, so that the
next one (after a restart too) looks only at what arrived since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from ..alert_rules import AlertRule
from ..state.transactions import utc
from ..storage import Store
from .records import next_version

WATCH_COLUMNS = (
    "tenant",
    "rule",
    "definition",
    "watching_since",
    "already_holding",
    "summary",
    "transactions",
    "version",
)
BASELINE_COLUMNS = ("tenant", "rule", "definition", "subject", "holds", "version")
CURSOR_COLUMNS = ("tenant", "evaluated_at", "version")

WATCHES = "SELECT * FROM alert_watches FINAL WHERE tenant = {tenant:String}"
BASELINES = """
SELECT rule, definition, groupArray(subject) AS subjects
FROM alert_baselines FINAL
WHERE tenant = {tenant:String} AND holds
GROUP BY rule, definition
"""
CURSOR = "SELECT max(evaluated_at) AS evaluated_at FROM alert_cursors FINAL WHERE tenant = {tenant:String}"

SHOWN = 20  # transactions named on a watch's summary


def definition(rule: AlertRule) -> str:
    """What the rule measures, as a digest: severity, receivers and description may change freely."""
    measured = {"when": rule.when, "workflow": rule.workflow, **rule.parameters()}
    if rule.dimensions:  # none: the digest of a rule from before dimensions existed
        measured["dimensions"] = dict(rule.dimensions)
    return hashlib.sha256(orjson.dumps(measured, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass
class Watch:
    rule: str
    definition: str
    since: dt.datetime
    already_holding: int
    summary: str
    transactions: tuple[str, ...]
    baseline: set[str] = field(default_factory=set)  # subjects meeting the rule since before the watch


def load(store: Store, tenant: str) -> dict[tuple[str, str], Watch]:
    """Every watch of a tenant, by (rule, definition), with its baseline."""
    watches = {
        (row["rule"], row["definition"]): Watch(
            rule=row["rule"],
            definition=row["definition"],
            since=utc(row["watching_since"]),
            already_holding=row["already_holding"],
            summary=row["summary"],
            transactions=tuple(row["transactions"]),
        )
        for row in store.rows(WATCHES, {"tenant": tenant})
    }
    for row in store.rows(BASELINES, {"tenant": tenant}):
        watch = watches.get((row["rule"], row["definition"]))
        if watch is not None:
            watch.baseline = set(row["subjects"])
    return watches


def started(rule: AlertRule, since: dt.datetime, holding: Iterable[str]) -> Watch:
    """A new watch of ``rule``: ``holding``, what already meets it, is its baseline."""
    subjects = sorted(holding)
    shown = tuple(subjects[:SHOWN])
    if not rule.per_transaction:
        summary = "measures the present: fires whenever its figure is over the limit"
    elif not subjects:
        summary = "nothing met this rule when it started watching"
    else:
        summary = (
            f"{len(subjects):,} transactions already met this rule when it started watching: "
            "history, not alerted one by one; each fires if it stops meeting the rule and meets it again"
        )
    return Watch(rule.name, definition(rule), since, len(subjects), summary, shown, set(subjects))


def save_started(store: Store, tenant: str, watch: Watch) -> None:
    """The watch and its baseline: the baseline first, so a watch row always has its baseline."""
    version = next_version()
    store.insert(
        "alert_baselines",
        [[tenant, watch.rule, watch.definition, s, True, version] for s in sorted(watch.baseline)],
        BASELINE_COLUMNS,
    )
    store.insert(
        "alert_watches",
        [
            [
                tenant,
                watch.rule,
                watch.definition,
                watch.since,
                watch.already_holding,
                watch.summary,
                list(watch.transactions),
                version,
            ]
        ],
        WATCH_COLUMNS,
    )


def save_left(store: Store, tenant: str, watch: Watch, subjects: Iterable[str]) -> None:
    """These subjects no longer meet the rule: they leave its baseline."""
    version = next_version()
    rows = [[tenant, watch.rule, watch.definition, subject, False, version] for subject in sorted(subjects)]
    store.insert("alert_baselines", rows, BASELINE_COLUMNS)


def cursor(store: Store, tenant: str) -> dt.datetime | None:
    [row] = store.rows(CURSOR, {"tenant": tenant})
    value = row["evaluated_at"]
    return utc(value) if value is not None and utc(value).year > 1970 else None


def save_cursor(store: Store, tenant: str, evaluated_at: dt.datetime) -> None:
    store.insert("alert_cursors", [[tenant, evaluated_at, next_version()]], CURSOR_COLUMNS)
