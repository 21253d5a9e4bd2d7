"""Transaction state, derived from events in ClickHouse SQL against the workflow definitions.

One query (``summary_sql``) decides, for every transaction as of a given time, its workflow, state
(completed, failed, stuck, in_progress), the steps it waits on and since when, its SLA clock,
missing steps and governance violations. The definitions travel as bound array parameters (one
element per workflow), so the same SQL serves the operations queue, the overview aggregates and a
single transaction's detail: a transaction's state is decided in exactly one place.

The rules, per transaction:
- a step is *done* once one of its events has status ``ok`` (a later success recovers retries);
- it *fails* when any event of a ``fail_on`` step exists, and *completes* when a ``complete_on``
  step is done; whichever came first decides;
- a step is *waiting* when it is not done, every step in its ``after`` is done and no step that
  comes after it is done (then it is *missing*, not waited on); it is due since the last of its
  prerequisites was done (or since the transaction started, with none);
- it is *stuck* when not terminal, waiting on a step, and nothing was done for ``stuck_after``;
- the SLA runs from the first event to completion (or failure, or ``as_of`` while open);
- a *violation* is a done step whose prerequisite was not done before it;
- it is *resolved* when an operator's latest resolve/reopen (the audit log) is a resolve: it then
  leaves the attention set, the stuck counts and the value at risk, but keeps its state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .storage import aggregates
from .workflows import Workflows

FAR_FUTURE = dt.datetime(2261, 12, 31, tzinfo=dt.UTC)  # the latest DateTime64 moment: "every event there is"


@dataclass(frozen=True)
class WorkflowParameters:
    """The workflow definitions as parallel arrays, ready to bind into the state SQL."""

    values: dict[str, Any]

    @classmethod
    def of(cls, workflows: Workflows) -> WorkflowParameters:
        definitions = list(workflows)
        return cls(
            {
                "wf_names": [d.name for d in definitions],
                "wf_steps": [[s.name for s in d.steps] for d in definitions],
                "wf_systems": [[s.system or "" for s in d.steps] for d in definitions],
                "wf_after": [[list(s.after) for s in d.steps] for d in definitions],
                "wf_successors": [[sorted(d.successors(s.name)) for s in d.steps] for d in definitions],
                "wf_within": [[float(s.within_s or 0) for s in d.steps] for d in definitions],
                "wf_complete": [list(d.complete_on) for d in definitions],
                "wf_fail": [list(d.fail_on) for d in definitions],
                "wf_sla": [float(d.sla_s or 0) for d in definitions],
                "wf_stuck": [float(d.stuck_after_s) for d in definitions],
            }
        )


PARAMETERS = """
WITH
    {as_of:DateTime64(6, 'UTC')} AS as_of_time,
    {wf_names:Array(String)} AS wf_names,
    {wf_steps:Array(Array(String))} AS wf_steps,
    {wf_systems:Array(Array(String))} AS wf_systems,
    {wf_after:Array(Array(Array(String)))} AS wf_after,
    {wf_successors:Array(Array(Array(String)))} AS wf_successors,
    {wf_within:Array(Array(Float64))} AS wf_within,
    {wf_complete:Array(Array(String))} AS wf_complete,
    {wf_fail:Array(Array(String))} AS wf_fail,
    {wf_sla:Array(Float64)} AS wf_sla,
    {wf_stuck:Array(Float64)} AS wf_stuck
"""

# The transaction a stored transaction id belongs to now: itself, or the one a link took it into.
LINKS = """(
    SELECT (groupArray(transaction_id), groupArray(merged_into))
    FROM transaction_links FINAL
    WHERE tenant = {tenant:String}
)"""
CURRENT_TRANSACTION = f"transform(transaction_id, {LINKS}.1, {LINKS}.2, transaction_id)"
LINKED = f"(SELECT arrayJoin(arrayConcat({LINKS}.1, {LINKS}.2)))"

# --- Facts: one row per transaction, the columns of aggregates.ROLLUP, from wherever they come -----

# From the rollups: each transaction's row read with FINAL, except those that links joined, whose
# rows merge again here; only transactions whose every event is at or before as_of.
ROLLUP_FACTS = f"""
SELECT transaction_id, {aggregates.names(aggregates.ROLLUP)}
FROM transaction_rollups FINAL
WHERE tenant = {{tenant:String}} AND last_activity <= as_of_time AND transaction_id NOT IN {LINKED}
UNION ALL
SELECT current_transaction AS transaction_id, {aggregates.remerged(aggregates.ROLLUP)}
FROM (
    SELECT *, {CURRENT_TRANSACTION} AS current_transaction
    FROM transaction_rollups
    WHERE tenant = {{tenant:String}} AND transaction_id IN {LINKED}
)
GROUP BY current_transaction
HAVING last_activity <= as_of_time
"""

# From the events up to as_of, of the transactions with a later event (so their rollups hold more
# than as_of saw); usually none when as_of is now.
LATE_KEYS = f"""
SELECT arrayJoin(keys) FROM transaction_rollups
WHERE tenant = {{tenant:String}}
  AND {CURRENT_TRANSACTION} IN (
      SELECT {CURRENT_TRANSACTION} FROM transaction_rollups
      WHERE tenant = {{tenant:String}} AND last_activity > as_of_time
  )
"""

EVENT_FACTS = f"""
SELECT current_transaction AS transaction_id, {aggregates.aggregated(aggregates.ROLLUP)}
FROM (
    SELECT *, {CURRENT_TRANSACTION} AS current_transaction
    FROM events FINAL
    WHERE tenant = {{tenant:String}} AND timestamp <= as_of_time AND correlation_id IN ({{keys}})
)
GROUP BY current_transaction
"""

# One transaction from its events: all of it is stored under its keys.
ONE_TRANSACTION_FACTS = f"""
SELECT {{transaction:String}} AS transaction_id, {aggregates.aggregated(aggregates.ROLLUP)}
FROM events FINAL
WHERE tenant = {{tenant:String}} AND timestamp <= as_of_time AND correlation_id IN {{keys:Array(String)}}
HAVING count() > 0
"""

# What the facts say of each transaction against its workflow's definition, except what depends
# on as_of itself (stuck, the SLA clock of an open transaction).
DERIVED = """
SELECT
    transaction_id, workflow, started_at, last_activity, systems, event_count, error_count,
    retry_count, amount, currency, terminal, waiting,
    arrayMap(s -> expected_systems[indexOf(expected, s)], waiting) AS waiting_systems,
    arrayMap(pre -> if(empty(pre), started_at, arrayMax(arrayMap(p -> step_first_ok[p], pre))),
             arrayMap(s -> expected_after[indexOf(expected, s)], waiting)) AS due_since,
    arrayMap(s -> expected_within[indexOf(expected, s)], waiting) AS waiting_within,
    last_progress, wf > 0 AS has_workflow, stuck_after, sla_limit, missing, violations,
    completed_at, failed_at
FROM
(
    -- Layers, innermost first, so that each derived value is computed once and read as a column:
    -- the analyzer would otherwise copy every alias into each expression that uses it.
    SELECT
        *,
        multiIf(
            failed_at IS NOT NULL AND (completed_at IS NULL OR failed_at <= completed_at), 'failed',
            completed_at IS NOT NULL, 'completed',
            '') AS terminal,
        if(terminal != '', CAST([], 'Array(String)'), open_steps) AS waiting
    FROM
    (
        SELECT
            *,
            if(notEmpty(completed_by),
               arrayMin(arrayMap(s -> step_first_ok[s], completed_by)), NULL) AS completed_at,
            if(notEmpty(failed_by),
               arrayMin(arrayMap(s -> step_first[s], failed_by)), NULL) AS failed_at
        FROM
        (
            SELECT
                *,
                arrayFilter(s -> has(done_steps, s), complete_on) AS completed_by,
                arrayFilter(s -> mapContains(step_first, s), fail_on) AS failed_by,
                if(empty(done_steps), started_at, arrayMax(mapValues(step_first_ok))) AS last_progress,
                arrayFilter((s, pre, after_it) ->
                    NOT has(done_steps, s) AND NOT has(fail_on, s)
                    AND hasAll(done_steps, pre) AND NOT hasAny(done_steps, after_it),
                    expected, expected_after, expected_successors) AS open_steps,
                arrayFilter((s, after_it) ->
                    NOT has(done_steps, s) AND NOT has(fail_on, s) AND hasAny(done_steps, after_it),
                    expected, expected_successors) AS missing,
                arrayFlatten(arrayMap(i ->
                    if(has(done_steps, expected[i]),
                       arrayMap(p -> (expected[i], p),
                                arrayFilter(p -> NOT has(done_steps, p)
                                                 OR step_first_ok[p] > step_first_ok[expected[i]],
                                            expected_after[i])),
                       CAST([], 'Array(Tuple(String, String))')),
                    arrayEnumerate(expected))) AS violations
            FROM
            (
                SELECT
                    transaction_id,
                    first_event.3 AS workflow,
                    first_event.1 AS started_at,
                    last_activity,
                    systems,
                    event_count,
                    error_count,
                    retry_count,
                    if(latest_amount.1, latest_amount.4, NULL) AS amount,
                    if(latest_currency.1, latest_currency.4, '') AS currency,
                    step_first,
                    step_first_ok,
                    mapKeys(step_first_ok) AS done_steps,
                    indexOf(wf_names, workflow) AS wf,
                    wf_steps[wf] AS expected,
                    wf_systems[wf] AS expected_systems,
                    wf_after[wf] AS expected_after,
                    wf_successors[wf] AS expected_successors,
                    wf_within[wf] AS expected_within,
                    wf_complete[wf] AS complete_on,
                    wf_fail[wf] AS fail_on,
                    wf_sla[wf] AS sla_limit,
                    wf_stuck[wf] AS stuck_after
                FROM ({facts})
            )
        )
    )
)
"""

# What depends on as_of itself, over DERIVED's columns from wherever they come ({derived}).
STATE = """
SELECT
    transaction_id,
    workflow,
    started_at,
    last_activity,
    systems,
    event_count,
    error_count,
    retry_count,
    amount,
    currency,
    multiIf(
        terminal != '', terminal,
        has_workflow AND notEmpty(waiting)
            AND toUnixTimestamp64Micro(as_of_time) - toUnixTimestamp64Micro(last_progress)
                >= stuck_after * 1e6,
            'stuck',
        'in_progress') AS state,
    waiting,
    waiting_systems,
    due_since,
    waiting_within,
    sla_limit,
    (toUnixTimestamp64Micro(multiIf(terminal = 'completed', assumeNotNull(completed_at),
                                    terminal = 'failed', assumeNotNull(failed_at),
                                    as_of_time))
     - toUnixTimestamp64Micro(started_at)) / 1e6 AS sla_elapsed,
    sla_limit > 0 AND sla_elapsed > sla_limit AS breached,
    missing,
    violations,
    completed_at,
    failed_at,
    transaction_id IN ({resolved}) AS resolved
FROM ({derived})
"""

# Transactions resolved as of `as_of`: those whose latest resolve/reopen in the audit log is a resolve.
RESOLVED_TRANSACTIONS = """
SELECT transaction_id
FROM audit_log
WHERE tenant = {tenant:String}
  AND action IN ('resolve', 'reopen')
  AND at <= {as_of:DateTime64(6, 'UTC')}
GROUP BY transaction_id
HAVING argMax(action, (at, action_id)) = 'resolve'
"""


def summary_sql(one_transaction: bool = False) -> str:
    """The state of every transaction (or of one, found by its keys: ``one_transaction``) as of ``as_of``.

    Every transaction's facts come from the engine's rollups, one row each, except those with events
    after as_of, whose facts are aggregated from their events up to as_of by the same expressions.
    One transaction's come from its events (a handful of rows through the sort key).
    """
    if one_transaction:
        facts = ONE_TRANSACTION_FACTS
    else:
        facts = f"{ROLLUP_FACTS}\nUNION ALL\n{EVENT_FACTS.replace('{keys}', LATE_KEYS)}"
    derived = DERIVED.format(facts=facts)
    return PARAMETERS + STATE.format(derived=derived, resolved=RESOLVED_TRANSACTIONS)


def summary_parameters(workflows: Workflows, tenant: str, as_of: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {**WorkflowParameters.of(workflows).values, "tenant": tenant, "as_of": as_of, **extra}
