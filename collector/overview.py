"""The executive overview: per workflow and in total, over transactions started in a time range."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .models import Bottleneck, CurrencyAmount, Overview, TrendPoint, WorkflowFigures
from .state import summary_parameters, summary_sql
from .storage import Store
from .transactions import EPOCH, FAR_FUTURE, utc
from .workflows import Workflows

SCOPE = """
    (empty({workflow:String}) OR workflow = {workflow:String})
    AND started_at >= {since:DateTime64(6, 'UTC')} AND started_at <= {until:DateTime64(6, 'UTC')}
"""

FIGURES = """
SELECT
    grouping(workflow) = 1 AS is_total,
    workflow,
    count() AS transactions,
    countIf(state = 'completed') AS completed,
    countIf(state = 'failed') AS failed,
    countIf(state = 'stuck' AND NOT resolved) AS stuck,
    countIf(state = 'in_progress') AS in_progress,
    countIf(breached) AS breached,
    countIf(resolved) AS resolved_count,
    countIf(sla_limit > 0) AS with_sla,
    countIf(notEmpty(violations)) AS with_violations,
    quantilesIf(0.5, 0.95)(
        (toUnixTimestamp64Micro(assumeNotNull(completed_at)) - toUnixTimestamp64Micro(started_at)) / 1e6,
        state = 'completed') AS cycle_time,
    min(started_at) AS first_started
FROM ({summary})
WHERE {scope}
GROUP BY GROUPING SETS ((workflow), ())
"""

VALUE_AT_RISK = """
SELECT
    grouping(workflow) = 1 AS is_total,
    workflow,
    currency,
    sum(amount) AS total_amount,
    count() AS transactions
FROM ({summary})
WHERE {scope} AND (state = 'stuck' OR breached) AND NOT resolved AND amount IS NOT NULL AND currency != ''
GROUP BY GROUPING SETS ((workflow, currency), (currency))
"""

BOTTLENECKS = """
SELECT
    waiting_on.1 AS step,
    waiting_on.2 AS system,
    count() AS waiting_transactions,
    countIf(state = 'stuck') AS stuck_transactions
FROM ({summary})
ARRAY JOIN arrayZip(waiting, waiting_systems) AS waiting_on
WHERE {scope} AND state IN ('stuck', 'in_progress') AND NOT resolved
GROUP BY step, system
ORDER BY stuck_transactions DESC, waiting_transactions DESC, step
LIMIT 10
"""

TREND = """
SELECT
    toStartOfInterval(started_at, toIntervalSecond({{bucket:UInt32}})) AS start,
    count() AS started,
    countIf(state = 'completed') AS completed,
    countIf(state = 'failed') AS failed,
    countIf(state = 'stuck' AND NOT resolved) AS stuck,
    countIf(breached) AS breached
FROM ({summary})
WHERE {scope}
GROUP BY start
ORDER BY start
"""

BUCKETS = (300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)


def bucket_seconds(span: dt.timedelta, points: int = 60) -> int:
    """The smallest usual bucket that draws ``span`` in at most ``points`` points."""
    for seconds in BUCKETS:
        if span.total_seconds() / seconds <= points:
            return seconds
    return BUCKETS[-1]


def _sql(template: str, store: Store) -> str:
    return template.format(summary=summary_sql(aggregates_complete=store.aggregates_complete()), scope=SCOPE)


def _figures(row: dict[str, Any], value_at_risk: list[CurrencyAmount]) -> WorkflowFigures:
    total = row["transactions"]
    p50, p95 = row["cycle_time"] if row["completed"] else (None, None)
    return WorkflowFigures(
        workflow=row["workflow"] if not row["is_total"] else "",
        transactions=total,
        completed=row["completed"],
        failed=row["failed"],
        stuck=row["stuck"],
        in_progress=row["in_progress"],
        breached=row["breached"],
        with_violations=row["with_violations"],
        resolved=row["resolved_count"],
        completion_rate=row["completed"] / total if total else None,
        sla_attainment=1 - row["breached"] / row["with_sla"] if row["with_sla"] else None,
        cycle_time_p50_seconds=p50,
        cycle_time_p95_seconds=p95,
        value_at_risk=value_at_risk,
    )


def overview(
    store: Store,
    workflows: Workflows,
    tenant: str,
    workflow: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    as_of: dt.datetime,
) -> Overview:
    parameters = summary_parameters(
        workflows, tenant, as_of, workflow=workflow, since=since or EPOCH, until=until or FAR_FUTURE
    )
    risk: dict[str, list[CurrencyAmount]] = {}
    for row in store.rows(_sql(VALUE_AT_RISK, store), parameters):
        key = "" if row["is_total"] else row["workflow"]
        risk.setdefault(key, []).append(
            CurrencyAmount(
                currency=row["currency"], amount=row["total_amount"], transactions=row["transactions"]
            )
        )
    rows = store.rows(_sql(FIGURES, store), parameters)
    totals_row = next((row for row in rows if row["is_total"]), None)
    empty_total = {
        "is_total": True,
        "workflow": "",
        "transactions": 0,
        "completed": 0,
        "failed": 0,
        "stuck": 0,
        "in_progress": 0,
        "breached": 0,
        "resolved_count": 0,
        "with_sla": 0,
        "with_violations": 0,
        "cycle_time": [0, 0],
    }
    totals = _figures(totals_row or empty_total, sorted(risk.get("", []), key=lambda item: -item.amount))
    per_workflow = [
        _figures(row, sorted(risk.get(row["workflow"], []), key=lambda item: -item.amount))
        for row in sorted((row for row in rows if not row["is_total"]), key=lambda row: -row["transactions"])
    ]
    first = since or (
        utc(totals_row["first_started"]) if totals_row and totals_row["transactions"] else as_of
    )
    bucket = bucket_seconds((until or as_of) - first)
    trend = [
        TrendPoint(
            start=utc(row["start"]),
            started=row["started"],
            completed=row["completed"],
            failed=row["failed"],
            stuck=row["stuck"],
            breached=row["breached"],
        )
        for row in store.rows(_sql(TREND, store), {**parameters, "bucket": bucket})
    ]
    bottlenecks = [
        Bottleneck(
            step=row["step"],
            system=row["system"] or None,
            waiting=row["waiting_transactions"],
            stuck=row["stuck_transactions"],
        )
        for row in store.rows(_sql(BOTTLENECKS, store), parameters)
    ]
    return Overview(
        as_of=as_of,
        since=since,
        until=until,
        totals=totals,
        workflows=per_workflow,
        bottlenecks=bottlenecks,
        trend_bucket_seconds=bucket,
        trend=trend,
    )
