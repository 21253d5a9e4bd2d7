"""Which alert rules hold now, for one tenant, read from the one state query.

State is never re-derived here: every figure comes from ``rules.summary_sql`` (wrapped, as the
overview does, and scoped before its rules run: ``SLICE``, ``DUE``, ``CHANGED``) or, for error
rates, from the events as ``systems`` counts them. The rules are then matched in Python against the
*attention set* of that scope (stuck, failed, SLA-breached or violating transactions, exactly the
queue's ``attention`` filter); the stuck count and the value at risk total from the gauges.

Transactions an operator marked resolved (the state query's ``resolved``) leave every
per-transaction rule, the stuck/failed count and the value at risk, so their alerts resolve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..alert_rules import AlertRule
from ..models import SchemaDrift, TransactionSummary
from ..schema import LATEST
from ..state import dimensions, drift, snapshot
from ..state.forecast import FORECASTED, ForecastModel, forecast_parameters
from ..state.rules import AMOUNT_AT_RISK
from ..state.transactions import summary_of
from ..storage import Store
from ..storage.keys import with_current_transaction
from ..workflows import Workflows

ATTENTION = """
SELECT *
FROM ({summary})
WHERE ({scope}) AND (state IN ('stuck', 'failed') OR breached OR notEmpty(violations) OR {predicted}
                     OR notEmpty(mismatch_fields) OR notEmpty(duplicates))
"""

# Per workflow, state and currency, so one pass over the state gives every gauge. "Stuck" and the
# value at risk leave out what an operator resolved; the other counts are outcomes and keep it.
GAUGES = """
SELECT
    workflow,
    state,
    currency,
    countIf(NOT (state = 'stuck' AND resolved)) AS transactions,
    countIf(breached) AS breached,
    countIf(resolved) AS resolved_count,
    countIf(at_risk) AS at_risk_transactions,
    sumIf({amount_at_risk}, at_risk) AS at_risk_amount
FROM
(
    SELECT
        *,
        (state = 'stuck' OR breached) AND amount IS NOT NULL AND NOT resolved AS at_risk
    FROM ({summary})
    WHERE {scope}
)
GROUP BY workflow, state, currency
"""

SUMMARIES_OF = """
SELECT *
FROM ({summary})
WHERE {scope}
"""

IDS = "transaction_id IN {ids:Array(String)}"
# What may have changed since the last evaluation, up to ``changed_until`` (``CHANGED_SINCE``): a
# transaction with an event received then (whatever its event time), an operator's resolve or reopen,
# what the state keeper reconciled or gave dimensions, one linked into another; and (``CHANGED``)
# the ones given (the subjects of the alerts firing, to see them resolve).
_RECEIVED = (
    "SELECT transaction_id FROM events "
    "WHERE tenant = {tenant:String} AND received_at >= {changed_since:DateTime64(6, 'UTC')}"
)
RECEIVED_SINCE = with_current_transaction(_RECEIVED)
RECEIVED = f"SELECT DISTINCT current_transaction AS transaction_id FROM ({RECEIVED_SINCE})"
# The transactions that time alone may have made meet an open condition since ``changed_since``: their
# SLA ran out, or they went without progress for their workflow's ``stuck_after`` (up to the longest
# a stuck rule waits beyond it). Read off the rollups' columns, before any rule runs.
LAST_PROGRESS = (
    "toUnixTimestamp64Micro(if(empty(step_first_ok), first_event.1, arrayMax(mapValues(step_first_ok))))"
)
DUE = f"""
(
    wf_sla[indexOf(wf_names, first_event.3)] > 0
    AND toUnixTimestamp64Micro(first_event.1) + wf_sla[indexOf(wf_names, first_event.3)] * 1e6
        BETWEEN toUnixTimestamp64Micro(as_of_time)
            AND toUnixTimestamp64Micro(as_of_time) + {{longest_lead:Float64}} * 1e6
)
OR
(
    wf_sla[indexOf(wf_names, first_event.3)] > 0
    AND toUnixTimestamp64Micro(first_event.1) + wf_sla[indexOf(wf_names, first_event.3)] * 1e6
        BETWEEN toUnixTimestamp64Micro({{changed_since:DateTime64(6, 'UTC')}})
            AND toUnixTimestamp64Micro(as_of_time)
)
OR
(
    {LAST_PROGRESS} + wf_stuck[indexOf(wf_names, first_event.3)] * 1e6 <= toUnixTimestamp64Micro(as_of_time)
    AND {LAST_PROGRESS} + greatest(wf_stuck[indexOf(wf_names, first_event.3)], {{longest_wait:Float64}}) * 1e6
        >= toUnixTimestamp64Micro({{changed_since:DateTime64(6, 'UTC')}})
)
"""
# The same over the state's columns (the snapshot's): it filters the state's result too, outside
# the scope of the state query's own constants (as_of_time). A transaction whose SLA deadline comes
# within the longest ``predicted_breach`` lead may be predicted to breach now: its forecast is read.
DUE_STATE = """
(
    sla_limit > 0 AND completed_at IS NULL AND failed_at IS NULL
    AND toUnixTimestamp64Micro(started_at) + sla_limit * 1e6
        BETWEEN toUnixTimestamp64Micro({as_of:DateTime64(6, 'UTC')})
            AND toUnixTimestamp64Micro({as_of:DateTime64(6, 'UTC')}) + {longest_lead:Float64} * 1e6
)
OR
(
    sla_limit > 0
    AND toUnixTimestamp64Micro(started_at) + sla_limit * 1e6
        BETWEEN toUnixTimestamp64Micro({changed_since:DateTime64(6, 'UTC')})
            AND toUnixTimestamp64Micro({as_of:DateTime64(6, 'UTC')})
)
OR
(
    toUnixTimestamp64Micro(last_progress) + stuck_after * 1e6
        <= toUnixTimestamp64Micro({as_of:DateTime64(6, 'UTC')})
    AND toUnixTimestamp64Micro(last_progress) + greatest(stuck_after, {longest_wait:Float64}) * 1e6
        >= toUnixTimestamp64Micro({changed_since:DateTime64(6, 'UTC')})
)
"""
UNTIL = "{changed_until:DateTime64(6, 'UTC')}"
CHANGED_SINCE = f"""
    SELECT current_transaction AS transaction_id
    FROM ({with_current_transaction(f"{_RECEIVED} AND received_at < {UNTIL}")})
    UNION ALL
    SELECT transaction_id FROM audit_log
    WHERE tenant = {{tenant:String}} AND at >= {{changed_since:DateTime64(6, 'UTC')}}
      AND at < {UNTIL}
    UNION ALL
    -- what the state keeper reconciled since (it derives a mismatch after its events were received)
    SELECT transaction_id FROM transaction_reconciliations
    WHERE tenant = {{tenant:String}} AND reconciled_at >= {{changed_since:DateTime64(6, 'UTC')}}
      AND reconciled_at < {UNTIL}
    UNION ALL
    -- and gave dimensions, which a rule's `dimensions:` may wait for
    SELECT transaction_id FROM transaction_dimensions
    WHERE tenant = {{tenant:String}} AND kept_at >= {{changed_since:DateTime64(6, 'UTC')}}
      AND kept_at < {UNTIL}
    UNION ALL
    -- a transaction linked into another since: it is the other's now (its alerts resolve)
    SELECT transaction_id FROM transaction_links
    WHERE tenant = {{tenant:String}} AND linked_at >= {{changed_since:DateTime64(6, 'UTC')}}
      AND linked_at < {UNTIL}
"""
CHANGED = f"transaction_id IN ({CHANGED_SINCE}) OR transaction_id IN {{ids:Array(String)}}"
CHANGED_IDS = f"SELECT DISTINCT transaction_id FROM ({CHANGED_SINCE})"
# What a count rule counts beside the stuck (the gauges total those): the transactions that failed
# within its window. Over the rollups' columns, those active within it (one that failed then was),
# whose state the state's filter narrows to the failed. Not every transaction active in the window:
# under live traffic, that is most of what arrived in the last hour.
ACTIVE_IN_WINDOW = "last_activity >= {active_since:DateTime64(6, 'UTC')}"
FAILED_IN_WINDOW = "failed_at >= {active_since:DateTime64(6, 'UTC')}"

# Errors and events per system over a window of event time, counted as ``systems.py`` counts them
# (ingest stores each event once), so an alert and the Systems page agree. Without FINAL: it would
# merge the whole month's rows to find a few minutes' worth. Only the failing events are mapped to
# the transaction they belong to now: under live traffic the window holds millions of events, and
# counting them by id, through the links, took 2.8x as long (0.26 s against 0.09 s for 1 M, quiet).
WINDOW_EVENTS = """
SELECT transaction_id, system, status FROM events
WHERE tenant = {tenant:String}
  AND timestamp > {since:DateTime64(6, 'UTC')} AND timestamp <= {as_of:DateTime64(6, 'UTC')}
  AND (empty({workflow:String}) OR workflow = {workflow:String})
  AND (empty({system:String}) OR system = {system:String})
"""
ERROR_RATES = f"""
SELECT system, events, errors, failing
FROM
(
    SELECT system, count() AS events, countIf(status = 'error') AS errors
    FROM ({WINDOW_EVENTS})
    GROUP BY system
) AS totals
LEFT JOIN
(
    SELECT system, groupUniqArray(50)(current_transaction) AS failing
    FROM ({with_current_transaction(WINDOW_EVENTS + " AND status = 'error'")})
    GROUP BY system
) AS failures USING (system)
"""

# Every other key (alias) of the given transactions: the latest claim of each alias wins.
KEYS_OF = """
SELECT transaction_id, groupArray((kind, alias)) AS keys
FROM
(
    SELECT alias, argMax(kind, version) AS kind, argMax(transaction_id, version) AS transaction_id
    FROM aliases
    WHERE tenant = {tenant:String}
      AND alias IN (
          SELECT alias FROM aliases
          WHERE tenant = {tenant:String} AND transaction_id IN {ids:Array(String)}
      )
    GROUP BY alias
)
WHERE transaction_id IN {ids:Array(String)}
GROUP BY transaction_id
"""


def _state(
    template: str,
    store: Store,
    workflows: Workflows,
    tenant: str,
    as_of: dt.datetime,
    scope: str = "",
    state_scope: str | None = None,
    *,
    model: ForecastModel | None = None,
    **bound: Any,
) -> tuple[str, dict[str, Any]]:
    """``template`` over the state of the transactions in ``scope`` (``state_scope``: see
    ``snapshot.summary``), its result filtered by the scope again over the state's columns: the
    transactions derived whatever the scope (events after as_of, changed since the snapshot) too.
    With a ``model`` (a predicted_breach rule needs one), each row has its forecast's columns too
    (``forecast.FORECASTED``, about 0.05 s at 10 M events), and ``{predicted}`` is whether it is
    predicted to breach; without one, false."""
    summary, parameters = snapshot.summary(
        store, workflows, tenant, as_of, scope=scope, state_scope=state_scope, **bound
    )
    outer = (scope if state_scope is None else state_scope) or "1"
    if model is not None:
        summary = FORECASTED.replace("{summary}", summary)
        parameters |= forecast_parameters(model)
    predicted = "breach_expected" if model is not None else "false"
    return template.format(
        summary=summary, amount_at_risk=AMOUNT_AT_RISK, scope=outer, predicted=predicted
    ), parameters


@dataclass(frozen=True)
class Candidate:
    """A transaction of the attention set, and whether an operator marked it resolved."""

    summary: TransactionSummary
    resolved: bool


@dataclass(frozen=True)
class GaugeRow:
    workflow: str
    state: str
    currency: str
    transactions: int
    breached: int
    resolved: int
    at_risk_transactions: int
    at_risk: float


@dataclass(frozen=True)
class SystemRate:
    system: str
    events: int
    errors: int
    failing: tuple[str, ...]  # transactions with an error in the window (at most 50)


@dataclass(frozen=True)
class Match:
    """What one rule measured for one subject; ``holds`` when the alert should be firing."""

    rule: AlertRule
    subject: str  # the transaction, system or currency it is about; "" for the rule's whole scope
    holds: bool
    summary: str  # one line for people
    transactions: tuple[str, ...] = ()  # the transactions behind it (the first few for aggregates)
    figures: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.rule.name, self.subject


# --- reading ----------------------------------------------------------------------------------


def unpaced() -> None:
    """Work on at full speed (see ``attention``'s ``pace``)."""


def attention(
    store: Store,
    workflows: Workflows,
    tenant: str,
    as_of: dt.datetime,
    scope: str = "",
    state_scope: str | None = None,
    model: ForecastModel | None = None,
    pace: Callable[[], None] = unpaced,
    **bound: Any,
) -> list[Candidate]:
    """The transactions needing attention within ``scope`` (``state_scope``: see ``_state``), or
    predicted to breach their SLA by ``model``. ``pace`` is called after each one is decoded and built
    (it may pause: over 200,000 at 10 M events on a first evaluation)."""
    sql, parameters = _state(
        ATTENTION, store, workflows, tenant, as_of, scope, state_scope, model=model, **bound
    )
    candidates = []
    for row in store.each_row(sql, parameters):  # decoded at the pace of building
        candidates.append(Candidate(summary_of(row, as_of, model), bool(row["resolved"])))
        pace()
    return candidates


def gauge_rows(
    store: Store, workflows: Workflows, tenant: str, as_of: dt.datetime, **bound: Any
) -> list[GaugeRow]:
    """The gauge figures of every transaction, read whole or slice by slice (``snapshot.read_parts``:
    they add up)."""
    sums: dict[tuple[str, str, str], list[float]] = {}
    for scope, part in snapshot.read_parts(store, workflows, tenant):
        sliced: dict[str, Any] = {**part, **bound}
        sql, parameters = _state(GAUGES, store, workflows, tenant, as_of, scope, **sliced)
        for row in store.rows(sql, parameters):
            figures = (
                row["transactions"],
                row["breached"],
                row["resolved_count"],
                row["at_risk_transactions"],
                float(row["at_risk_amount"] or 0.0),
            )
            key = (row["workflow"], row["state"], row["currency"] or "")
            sums[key] = [a + b for a, b in zip(sums.get(key, [0] * 5), figures, strict=True)]
    return [
        GaugeRow(workflow, state, currency, int(n), int(breached), int(resolved), int(at_risk_n), at_risk)
        for (workflow, state, currency), (n, breached, resolved, at_risk_n, at_risk) in sorted(sums.items())
    ]


def summaries(
    store: Store,
    workflows: Workflows,
    tenant: str,
    as_of: dt.datetime,
    ids: Iterable[str],
    model: ForecastModel | None = None,
) -> dict[str, Candidate]:
    """The current state of these transactions (any state, not only the attention set)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = store.rows(*_state(SUMMARIES_OF, store, workflows, tenant, as_of, IDS, model=model, ids=wanted))
    return {
        row["transaction_id"]: Candidate(summary_of(row, as_of, model), bool(row["resolved"])) for row in rows
    }


def with_dimensions(
    store: Store, workflows: Workflows, tenant: str, candidates: Sequence[Candidate]
) -> list[Candidate]:
    """``candidates`` with their dimensions, which a rule's ``dimensions:`` matches on."""
    ids = (c.summary.correlation_id for c in candidates)
    found = dimensions.of_transactions(store, workflows, tenant, ids)
    return [
        replace(c, summary=c.summary.model_copy(update={"dimensions": found[c.summary.correlation_id]}))
        if c.summary.correlation_id in found
        else c
        for c in candidates
    ]


def changed_since(store: Store, tenant: str, since: dt.datetime, until: dt.datetime = LATEST) -> set[str]:
    """The transactions that may have changed since ``since``, before ``until`` (``CHANGED_SINCE``)."""
    rows = store.rows(CHANGED_IDS, {"tenant": tenant, "changed_since": since, "changed_until": until})
    return {row["transaction_id"] for row in rows}


def received_since(store: Store, tenant: str, since: dt.datetime) -> set[str]:
    """The transactions with an event received after ``since``."""
    rows = store.rows(RECEIVED, {"tenant": tenant, "changed_since": since})
    return {row["transaction_id"] for row in rows}


def keys_of(store: Store, tenant: str, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each transaction's other keys, ``{kind: alias}`` (e.g. ``{"erp.sales_order": "SO-88812"}``)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = store.rows(KEYS_OF, {"tenant": tenant, "ids": wanted})
    return {row["transaction_id"]: {kind: alias for kind, alias in sorted(row["keys"])} for row in rows}


def error_rates(store: Store, tenant: str, rule: AlertRule, as_of: dt.datetime) -> list[SystemRate]:
    since = as_of - dt.timedelta(seconds=rule.window_s or 0)
    parameters = {
        "tenant": tenant,
        "since": since,
        "as_of": as_of,
        "workflow": rule.workflow or "",
        "system": rule.system or "",
    }
    return [
        SystemRate(row["system"], row["events"], row["errors"], tuple(sorted(row["failing"])))
        for row in store.rows(ERROR_RATES, parameters)
    ]


# --- matching (pure) --------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """2h30m, 45m, 1d4h, 30s: how long, the way the definitions file writes it."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])


def money(amount: float) -> str:
    return f"{amount:,.2f}".removesuffix(".00")


def waited_s(summary: TransactionSummary, as_of: dt.datetime) -> float:
    """How long it has waited on the step due longest (0 when it waits on nothing)."""
    if not summary.waiting_on:
        return 0.0
    return (as_of - min(step.due_since for step in summary.waiting_on)).total_seconds()


def _waiting(summary: TransactionSummary) -> str:
    if not summary.waiting_on:
        return ""
    steps = ", ".join(f"{s.step} ({s.system})" if s.system else s.step for s in summary.waiting_on)
    return f", waiting on {steps}"


def _transaction_match(rule: AlertRule, summary: TransactionSummary, as_of: dt.datetime) -> Match | None:
    """The match of a per-transaction rule, or None when the transaction does not meet it."""
    is_open = summary.state not in ("completed", "failed")
    name = f"{summary.workflow} {summary.correlation_id}"
    figures: dict[str, Any] = {}
    if rule.when == "sla_breached" and is_open and summary.sla.breached:
        limit = summary.sla.limit_seconds or 0
        figures = {"sla_seconds": limit, "breached_by_seconds": summary.sla.breached_by_seconds}
        text = (
            f"{name} breached its {human_duration(limit)} SLA by "
            f"{human_duration(summary.sla.breached_by_seconds)}{_waiting(summary)}"
        )
    elif rule.when == "stuck_longer_than" and summary.state == "stuck":
        waited = waited_s(summary, as_of)
        if waited < (rule.duration_s or 0):
            return None
        figures = {"waiting_seconds": waited}
        text = f"{name} is stuck: no progress for {human_duration(waited)}{_waiting(summary)}"
    elif rule.when == "failed" and summary.state == "failed":
        when = f" at {summary.failed_at:%Y-%m-%d %H:%M} UTC" if summary.failed_at else ""
        text = f"{name} failed{when}{_waiting(summary)}"
    elif rule.when == "predicted_breach" and is_open and not summary.sla.breached:
        forecast = summary.forecast
        if forecast is None or not forecast.breach_expected or forecast.lead_seconds is None:
            return None
        if forecast.lead_seconds > (rule.lead_s or 0):
            return None
        figures = {
            "lead_seconds": forecast.lead_seconds,
            "eta": forecast.eta.isoformat() if forecast.eta else None,
        }
        text = f"{name} will breach its SLA in {human_duration(forecast.lead_seconds)}: {forecast.reason}"
    elif rule.when == "violation" and summary.violations:
        figures = {"violations": len(summary.violations)}
        text = f"{name}: " + "; ".join(v.text() for v in summary.violations)
    elif rule.when == "mismatch" and summary.mismatches:
        figures = {"mismatches": len(summary.mismatches)}
        text = f"{name}: " + "; ".join(m.text() for m in summary.mismatches)
    elif rule.when == "duplicate" and summary.duplicates:
        figures = {"duplicates": len(summary.duplicates)}
        first = summary.duplicates[0]
        others = ", ".join(d.correlation_id for d in summary.duplicates)
        text = f"{name}: possible duplicate of {others} (same {first.field})"
    else:
        return None
    return Match(rule, summary.correlation_id, True, text, (summary.correlation_id,), figures)


def _scope(rule: AlertRule) -> str:
    return f" in {rule.workflow}" if rule.workflow else ""


def _count_match(
    rule: AlertRule, candidates: Sequence[Candidate], gauges: Sequence[GaugeRow], as_of: dt.datetime
) -> Match:
    """Stuck now (as the gauges count every transaction), or failed within the window (a failure
    stays failed, so only recent ones count: the candidates hold every one that failed in it)."""
    since = as_of - dt.timedelta(seconds=rule.window_s or 0)
    stuck = sum(
        row.transactions for row in gauges if row.state == "stuck" and rule.workflow in (None, row.workflow)
    )
    failed = [
        c.summary
        for c in candidates
        if c.summary.state == "failed" and (c.summary.failed_at or as_of) >= since
    ]
    behind = failed + [c.summary for c in candidates if c.summary.state == "stuck"]
    behind.sort(key=lambda s: (s.last_activity, s.correlation_id), reverse=True)
    count, threshold = stuck + len(failed), rule.threshold or 0
    text = (
        f"{count} transactions{_scope(rule)} stuck, or failed in the last "
        f"{human_duration(rule.window_s or 0)} ({stuck} stuck, {len(failed)} failed; "
        f"threshold {threshold})"
    )
    figures = {"count": count, "stuck": stuck, "failed": len(failed), "threshold": threshold}
    return Match(rule, "", count > threshold, text, tuple(s.correlation_id for s in behind), figures)


def _error_rate_matches(rule: AlertRule, rates: Sequence[SystemRate]) -> list[Match]:
    matches = []
    for rate in rates:
        percent = 100.0 * rate.errors / rate.events if rate.events else 0.0
        holds = rate.events >= rule.min_events and percent > (rule.percent or 0)
        text = (
            f"{rate.system} error rate{_scope(rule)} {percent:.1f}% ({rate.errors} of {rate.events} events) "
            f"in the last {human_duration(rule.window_s or 0)}; the limit is {rule.percent:g}%"
        )
        figures = {"error_rate_percent": percent, "errors": rate.errors, "events": rate.events}
        matches.append(Match(rule, rate.system, holds, text, rate.failing, figures))
    return matches


def _value_at_risk_matches(
    rule: AlertRule, candidates: Sequence[Candidate], gauges: Sequence[GaugeRow]
) -> list[Match]:
    """Value of stuck or SLA-breached transactions per currency: the total as the gauges (and the
    overview) count it, over every transaction; the ones behind it named from the candidates."""
    totals: dict[str, tuple[float, int]] = {}  # currency: (amount, transactions)
    if rule.currency:
        totals[rule.currency] = (0.0, 0)
    for row in gauges:
        in_scope = rule.workflow in (None, row.workflow) and rule.currency in (None, row.currency)
        if in_scope and row.currency and row.at_risk_transactions:
            amount, count = totals.get(row.currency, (0.0, 0))
            totals[row.currency] = (amount + row.at_risk, count + row.at_risk_transactions)
    behind: dict[str, list[TransactionSummary]] = {}
    for c in candidates:
        s = c.summary
        if (s.state == "stuck" or s.sla.breached) and s.amount is not None and s.currency in totals:
            behind.setdefault(s.currency or "", []).append(s)
    matches = []
    for currency, (total, count) in sorted(totals.items()):
        named = sorted(behind.get(currency, []), key=lambda s: (-abs(s.amount or 0), s.correlation_id))
        text = (
            f"{currency} {money(total)} at risk{_scope(rule)} in {count} stuck or SLA-breached "
            f"transactions; the limit is {currency} {money(rule.amount or 0)}"
        )
        figures = {"value_at_risk": total, "currency": currency, "transactions": count}
        holds = total > (rule.amount or 0)
        matches.append(Match(rule, currency, holds, text, tuple(s.correlation_id for s in named), figures))
    return matches


def _drift_matches(rule: AlertRule, drifts: Sequence[SchemaDrift]) -> list[Match]:
    return [
        Match(
            rule,
            drift.subject(found),
            True,
            found.summary,
            (found.example.correlation_id,),
            found.model_dump(mode="json"),
        )
        for found in drifts
        if rule.system in (None, found.system)
    ]


def evaluate_rules(
    rules: Sequence[AlertRule],
    candidates: Sequence[Candidate],
    rates: Callable[[AlertRule], Sequence[SystemRate]],
    as_of: dt.datetime,
    gauges: Sequence[GaugeRow] = (),
    drifts: Callable[[], Sequence[SchemaDrift]] = tuple,
    pace: Callable[[], None] = unpaced,
) -> dict[tuple[str, str], Match]:
    """Every (rule, subject) measured now: per-transaction rules only where they hold, aggregate
    rules for every subject seen (so a resolved notification can say where the figure stands).
    ``gauges``: the figures of every transaction, which the value at risk and the stuck count total;
    ``drifts``: the schema drifts now (read once, when a rule asks); ``pace``: called after each
    transaction a rule is matched against (see ``attention``)."""
    found: dict[tuple[str, str], Match] = {}
    for rule in rules:
        scoped = [
            c
            for c in candidates
            if not c.resolved
            and (rule.workflow is None or c.summary.workflow == rule.workflow)
            and all(c.summary.dimensions.get(key) == value for key, value in rule.dimensions)
        ]
        if rule.per_transaction:
            matches = []
            for c in scoped:
                if (match := _transaction_match(rule, c.summary, as_of)) is not None:
                    matches.append(match)
                pace()
        elif rule.when == "stuck_or_failed_count_above":
            matches = [_count_match(rule, scoped, gauges, as_of)]
        elif rule.when == "system_error_rate_above":
            matches = _error_rate_matches(rule, rates(rule))
        elif rule.when == "schema_drift":
            matches = _drift_matches(rule, drifts())
        else:
            matches = _value_at_risk_matches(rule, scoped, gauges)
        found.update((match.key, match) for match in matches)
    return found
