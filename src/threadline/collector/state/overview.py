"""The executive overview: per workflow and in total, over transactions started in a time range."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ..models import (
    Bottleneck,
    CurrencyAmount,
    DimensionFigures,
    Overview,
    TrendPoint,
    WorkflowFigures,
)
from ..schema import EARLIEST, LATEST
from ..storage import Store
from ..workflows import Workflows
from . import dimensions, snapshot
from .dimensions import DimensionFilter
from .rules import AMOUNT_AT_RISK
from .transactions import utc

# Everything the overview shows per workflow and in total, in one pass over the state: value at risk
# per currency and what open transactions wait on come as maps (``sumMap``: keys, then one array of
# sums per figure). The trend comes from a pass of its own (TREND): as a map of six arrays built for
# every transaction, it cost more than everything else together (5.7 s against 1.6 s at 1.7 M
# transactions, and 0.9 s for TREND).
# The transactions the overview counts: of one workflow (or all), started in the range.
IN_RANGE = """(empty({workflow:String}) OR workflow = {workflow:String})
      AND started_at >= {since:DateTime64(6, 'UTC')} AND started_at <= {until:DateTime64(6, 'UTC')}
      AND {in_slice}"""


def in_range(filters: Sequence[DimensionFilter] = ()) -> str:
    """IN_RANGE, of the transactions with every value of ``filters``."""
    return IN_RANGE.replace("{in_slice}", dimensions.condition(filters))


# The counts the figures and the trend both give (``breached_count``, not ``breached``: FIGURES' sums
# read the column).
COUNTS = """
    count() AS transactions,
    countIf(state = 'completed') AS completed,
    countIf(state = 'failed') AS failed,
    countIf(state = 'stuck' AND NOT resolved) AS stuck,
    countIf(breached) AS breached_count
"""
COUNTED = ("transactions", "completed", "failed", "stuck", "breached_count")  # COUNTS' columns
# One row per grouping set (``grouping_sets``): per workflow, per value of the dimension grouped by
# ('' for the transactions that carry none), per bucket of start (the trend), and in total. One
# pass: a pass of its own per dimension value cost as much again (0.94-1.18 s against 0.53-0.65 s
# for both at 10 M events); the trend in the same pass, 0.43-0.48 s against 0.51-0.62 s.
FIGURES = """
SELECT
    {grouped_by} AS grouped_by,
    {grouped} AS grouped,
    {start}
    {counts},
    countIf(state = 'in_progress') AS in_progress,
    countIf(resolved) AS resolved_count,
    countIf((state = 'stuck' OR breached) AND NOT resolved) AS at_risk_count,
    countIf(sla_limit > 0) AS with_sla,
    countIf(notEmpty(violations)) AS with_violations,
    countIf(notEmpty(mismatch_fields)) AS with_mismatches,
    sumMap(mismatch_fields, arrayMap(field -> toUInt64(1), mismatch_fields)) AS mismatched_values,
    countIf(notEmpty(duplicates)) AS with_duplicates,
    quantilesIf(0.5, 0.95)(
        (toUnixTimestamp64Micro(assumeNotNull(completed_at)) - toUnixTimestamp64Micro(started_at)) / 1e6,
        state = 'completed') AS cycle_time,
    min(started_at) AS first_started,
    sumMapIf([currency], [{amount_at_risk}], [toUInt64(1)], at_risk) AS value_at_risk,
    sumMapIf(arrayMap((step, system) -> (step, system), waiting, waiting_systems),
             arrayMap(step -> toUInt64(1), waiting), arrayMap(step -> toUInt64(state = 'stuck'), waiting),
             state IN ('stuck', 'in_progress') AND NOT resolved) AS waiting_on
FROM
(
    SELECT
        *,
        (state = 'stuck' OR breached) AND NOT resolved AND amount IS NOT NULL AND currency != '' AS at_risk,
        toStartOfInterval(started_at, toIntervalSecond({{trend_bucket:UInt32}})) AS start
    FROM ({source})
    WHERE {in_range}
)
GROUP BY GROUPING SETS ({sets})
""".replace("{counts}", COUNTS.strip())
BY_DIMENSION = """
SELECT * FROM ({summary}) AS state
LEFT JOIN ({valued}) AS valued USING (transaction_id)
""".replace("{valued}", dimensions.VALUE_OF)
# The trend alone, for a range with no start whose first start makes the bucket drawn shorter than
# FIGURES' days (a history of 15 days or less). Per bucket of start (``bucket_seconds``; aligned on
# the epoch): five-minute buckets summed in Python were 26,000 rows to decode at 10 M events, 80 ms.
TREND = """
SELECT
    toStartOfInterval(started_at, toIntervalSecond({{trend_bucket:UInt32}})) AS start,
    {counts}
FROM ({summary})
WHERE {in_range}
GROUP BY start
""".replace("{counts}", COUNTS.strip())
WORKFLOW, VALUE, START, TOTAL = "workflow", "dimension_value", "start", ""


def grouping_sets(keys: Sequence[str]) -> dict[str, str]:
    """FIGURES' grouping sets, one per key and the total; ``grouped_by`` names the key of a row
    (``TOTAL``: none), ``grouped`` its workflow or dimension value."""
    named = [key for key in keys if key != START]
    return {
        "sets": "".join(f"({key}), " for key in keys) + "()",
        "grouped_by": "multiIf(" + "".join(f"grouping({key}) = 0, '{key}', " for key in keys) + "'')",
        "grouped": "multiIf(" + "".join(f"grouping({key}) = 0, {key}, " for key in named) + "'')",
        "start": "start," if START in keys else "",
    }


DAY = 86400
BUCKETS = (300, 900, 3600, 3 * 3600, 6 * 3600, DAY, 7 * DAY)


def bucket_seconds(span: dt.timedelta, points: int = 60) -> int:
    """The smallest usual bucket that draws ``span`` in at most ``points`` points."""
    for seconds in BUCKETS:
        if span.total_seconds() / seconds <= points:
            return seconds
    return BUCKETS[-1]


def summed(rows: list[dict[str, Any]], bucket: int) -> list[dict[str, Any]]:
    """Rows of COUNTS per bucket of start, summed into ``bucket``s: a whole number of theirs, so each
    falls in the bucket ``toStartOfInterval`` gives its transactions (both are aligned on the epoch)."""
    sums: dict[int, dict[str, Any]] = {}
    for row in rows:
        start = int(utc(row["start"]).timestamp()) // bucket * bucket
        into = sums.setdefault(
            start, {"start": dt.datetime.fromtimestamp(start, dt.UTC)} | dict.fromkeys(COUNTED, 0)
        )
        for column in COUNTED:
            into[column] += row[column]
    return list(sums.values())


def _value_at_risk(row: dict[str, Any]) -> list[CurrencyAmount]:
    currencies, amounts, counts = row["value_at_risk"]
    return sorted(
        (
            CurrencyAmount(currency=currency, amount=amount, transactions=count)
            for currency, amount, count in zip(currencies, amounts, counts, strict=True)
        ),
        key=lambda item: -item.amount,
    )


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    """The ``Figures`` of one row of FIGURES, as keyword arguments."""
    total = row["transactions"]
    p50, p95 = row["cycle_time"] if row["completed"] else (None, None)
    return dict(
        transactions=total,
        completed=row["completed"],
        failed=row["failed"],
        stuck=row["stuck"],
        in_progress=row["in_progress"],
        breached=row["breached_count"],
        with_violations=row["with_violations"],
        resolved=row["resolved_count"],
        at_risk=row["at_risk_count"],
        completion_rate=row["completed"] / total if total else None,
        sla_attainment=1 - row["breached_count"] / row["with_sla"] if row["with_sla"] else None,
        cycle_time_p50_seconds=p50,
        cycle_time_p95_seconds=p95,
        value_at_risk=_value_at_risk(row),
        with_mismatches=row["with_mismatches"],
        mismatched_values=dict(zip(*row["mismatched_values"], strict=True)),
        with_duplicates=row["with_duplicates"],
    )


def _workflow_figures(row: dict[str, Any]) -> WorkflowFigures:
    return WorkflowFigures(workflow=row["grouped"], **_figures(row))


def _trend(rows: list[dict[str, Any]]) -> list[TrendPoint]:
    """Rows per bucket of start (FIGURES' or TREND's) as points, oldest first."""
    return sorted(
        (
            TrendPoint(
                start=utc(row["start"]),
                started=row["transactions"],
                completed=row["completed"],
                failed=row["failed"],
                stuck=row["stuck"],
                breached=row["breached_count"],
            )
            for row in rows
        ),
        key=lambda point: point.start,
    )


def _bottlenecks(row: dict[str, Any]) -> list[Bottleneck]:
    pairs, waiting, stuck = row["waiting_on"]
    ranked = sorted(
        zip(pairs, waiting, stuck, strict=True), key=lambda item: (-item[2], -item[1], item[0][0])
    )
    return [
        Bottleneck(step=step, system=system or None, waiting=count, stuck=stuck_count)
        for (step, system), count, stuck_count in ranked[:10]
    ]


def listed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one grouping (workflows, a dimension's values), most transactions first, then by name: the
    engine's GROUP BY order varies from store to store and read to read, and a tie must not swap two
    workflows on the page."""
    return sorted(rows, key=lambda row: (-row["transactions"], row["grouped"]))


def overview(
    store: Store,
    workflows: Workflows,
    tenant: str,
    workflow: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    as_of: dt.datetime,
    dimension_filters: tuple[DimensionFilter, ...] = (),
    group_by: str | None = None,
) -> Overview:
    """The figures per workflow and in total, over the transactions started in the range that have
    every value of ``dimension_filters``; with ``group_by``, per value of that dimension as well."""
    summary, parameters = snapshot.summary(
        store,
        workflows,
        tenant,
        as_of,
        scope=dimensions.condition(dimension_filters) if dimension_filters else "",
        workflow=workflow,
        since=since or EARLIEST,
        until=until or LATEST,
        dimension_filters=dimensions.bound(dimension_filters),
        group_by=group_by or "",
    )

    within = in_range(dimension_filters)
    source = BY_DIMENSION.replace("{summary}", summary) if group_by else summary
    # The trend comes in the same pass: per bucket drawn when the range has a start; with none, the
    # bucket drawn depends on the first start, so per day, summed into the bucket drawn once known.
    bucket = bucket_seconds((until or as_of) - since) if since else None
    keys = [WORKFLOW, *([VALUE] if group_by else []), START]
    sql = FIGURES.format(source=source, in_range=within, amount_at_risk=AMOUNT_AT_RISK, **grouping_sets(keys))
    by: dict[str, list[dict[str, Any]]] = {WORKFLOW: [], VALUE: [], START: [], TOTAL: []}
    for row in store.rows(sql, parameters | {"trend_bucket": bucket or DAY}):
        by[row["grouped_by"]].append(row)
    totals_row = by[TOTAL][0] if by[TOTAL] and by[TOTAL][0]["transactions"] else None
    if totals_row is None:
        totals_row = {
            "grouped": "",
            "transactions": 0,
            "completed": 0,
            "failed": 0,
            "stuck": 0,
            "in_progress": 0,
            "breached_count": 0,
            "resolved_count": 0,
            "at_risk_count": 0,
            "with_sla": 0,
            "with_violations": 0,
            "with_mismatches": 0,
            "mismatched_values": ([], []),
            "with_duplicates": 0,
            "cycle_time": [0, 0],
            "first_started": as_of,
            "value_at_risk": ([], [], []),
            "waiting_on": ([], [], []),
        }
    if bucket is None:
        bucket = bucket_seconds((until or as_of) - utc(totals_row["first_started"]))
        if bucket % DAY == 0:  # a history of more than 15 days
            by[START] = summed(by[START], bucket)
        else:
            by[START] = store.rows(
                TREND.format(summary=summary, in_range=within), parameters | {"trend_bucket": bucket}
            )
    return Overview(
        as_of=as_of,
        since=since,
        until=until,
        totals=_workflow_figures(totals_row),
        workflows=[_workflow_figures(row) for row in listed(by[WORKFLOW])],
        group_by=group_by,
        groups=[DimensionFigures(value=row["grouped"] or None, **_figures(row)) for row in listed(by[VALUE])],
        bottlenecks=_bottlenecks(totals_row),
        trend_bucket_seconds=bucket,
        trend=_trend(by[START]),
    )
