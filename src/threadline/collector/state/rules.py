"""Transaction state, derived in ClickHouse SQL from the engine-kept aggregates (or the events)
against the workflow definitions.

One query (``summary_sql``) decides, for every transaction as of a given time, its workflow, state
(completed, failed, stuck, in_progress), the steps it waits on and since when, its SLA clock,
missing steps and governance violations. The definitions travel as bound array parameters (one
element per workflow), so the same SQL serves the operations queue, the overview aggregates and a
single transaction's detail: a transaction's state is decided in exactly one place.

The rules, per transaction:
- a step is *done* once one of its events has status ``ok`` (a later success recovers retries);
- it *fails* when any event of a ``fail_on`` step exists, whenever it came (a failure after
  completion reverses it: the failure is the news), and *completes* when a ``complete_on`` step is
  done and no failure step was seen;
- a step is *waiting* when it is not done, every step in its ``after`` is done and no step that
  comes after it is done (then it is *missing*, not waited on); it is due since the last of its
  prerequisites was done (or since the transaction started, with none);
- it is *stuck* when not terminal, waiting on a step, and nothing was done for ``stuck_after``;
- the SLA runs from the first event to completion (or failure, or ``as_of`` while open);
- a *violation* is a done step whose prerequisite was not done before it (``out_of_order``), or a
  step (not a failure step) done after the workflow failed (``after_failure``);
- a failure step is an outcome, not a step to wait for: never waited on, missing or listed unseen;
- it is *resolved* when an operator's latest resolve/reopen (the audit log) is a resolve: it then
  leaves the attention set, the stuck counts and the value at risk, but keeps its state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from ..schema import EARLIEST, LATEST
from ..storage import aggregates
from ..storage.keys import LINKED, LINKS, and_linked_into, several_rows, with_current_transaction
from ..workflows import Workflows

# What one at-risk transaction counts in the value at risk (overview, alerts, Prometheus): its amount
# whichever way the money goes. A stuck credit (a negative amount) is money at risk as much as a
# stuck invoice is, never a saving that cancels one out.
AMOUNT_AT_RISK = "abs(ifNull(amount, 0))"


@dataclass(frozen=True)
class WorkflowParameters:
    """The workflow definitions as parallel arrays, ready to bind into the state SQL."""

    values: dict[str, Any]
    # What the state keeper derives beyond the state (``reconciliation.py``, ``dimensions.py``): not
    # bound, but part of the digest, so a change of it derives every transaction again.
    reconciliation: str = ""

    @classmethod
    def of(cls, workflows: Workflows) -> WorkflowParameters:
        definitions = list(workflows)
        # None declared: the digest stays what it was before reconciliation (then dimensions) existed,
        # so an upgrade does not derive every transaction again.
        reconciled: list[tuple[object, ...]] = [
            (d.name, d.reconcile, d.unique_by) + ((d.dimensions,) if d.dimensions else ())
            for d in definitions
            if d.reconcile or d.unique_by or d.dimensions
        ]
        return cls(
            {
                "wf_names": [d.name for d in definitions],
                "wf_steps": [[s.name for s in d.steps] for d in definitions],
                "wf_systems": [[s.system or "" for s in d.steps] for d in definitions],
                "wf_after": [[list(s.after) for s in d.steps] for d in definitions],
                "wf_successors": [[sorted(d.successors(s.name)) for s in d.steps] for d in definitions],
                # (step, a step it must come after), in definition order: the violations to look for
                "wf_prerequisites": [[(s.name, p) for s in d.steps for p in s.after] for d in definitions],
                "wf_within": [[float(s.within_s or 0) for s in d.steps] for d in definitions],
                "wf_complete": [list(d.complete_on) for d in definitions],
                "wf_fail": [list(d.fail_on) for d in definitions],
                "wf_sla": [float(d.sla_s or 0) for d in definitions],
                "wf_stuck": [float(d.stuck_after_s) for d in definitions],
            },
            repr(reconciled) if reconciled else "",
        )

    @property
    def digest(self) -> str:
        """Names these definitions as the rules read them: a state derived with others is stale."""
        named = repr(sorted(self.values.items())) + self.reconciliation
        return hashlib.sha256(named.encode()).hexdigest()[:16]


PARAMETERS = f"""
WITH
    {{as_of:DateTime64(6, 'UTC')}} AS as_of_time,
    toDateTime64('{EARLIEST:%Y-%m-%d %H:%M:%S}', 6, 'UTC') AS EPOCH,
    toDateTime64('{LATEST:%Y-%m-%d %H:%M:%S}', 6, 'UTC') AS FAR_FUTURE,
    {{wf_names:Array(String)}} AS wf_names,
    {{wf_steps:Array(Array(String))}} AS wf_steps,
    {{wf_systems:Array(Array(String))}} AS wf_systems,
    {{wf_after:Array(Array(Array(String)))}} AS wf_after,
    {{wf_successors:Array(Array(Array(String)))}} AS wf_successors,
    {{wf_prerequisites:Array(Array(Tuple(String, String)))}} AS wf_prerequisites,
    {{wf_within:Array(Array(Float64))}} AS wf_within,
    {{wf_complete:Array(Array(String))}} AS wf_complete,
    {{wf_fail:Array(Array(String))}} AS wf_fail,
    {{wf_sla:Array(Float64)}} AS wf_sla,
    {{wf_stuck:Array(Float64)}} AS wf_stuck
"""

# --- Facts: one row per transaction, the columns of aggregates.ROLLUP, from wherever they come -----

# A transaction's rows merge into one in the background; until then, and for linked transactions,
# a query merges them itself. Reading with FINAL instead would merge every row through the
# aggregate functions, maps included: five times slower at 10 M events.
MERGING_ROLLUPS = f"""
SELECT * FROM transaction_rollups
WHERE tenant = {{tenant:String}}
  AND (cityHash64(transaction_id) IN {several_rows("transaction_rollups", "tenant = {tenant:String}")}
       OR transaction_id IN {LINKED})
"""

# From the rollups, one row per transaction whose every event is at or before as_of.
ROLLUP_FACTS = f"""
SELECT transaction_id, {aggregates.names(aggregates.ROLLUP)}
FROM transaction_rollups
WHERE tenant = {{tenant:String}} AND last_activity <= as_of_time
  AND cityHash64(transaction_id) NOT IN {several_rows("transaction_rollups", "tenant = {tenant:String}")}
  AND transaction_id NOT IN {LINKED} {{open_only}} {{scope}}
UNION ALL
SELECT current_transaction AS transaction_id, {aggregates.remerged(aggregates.ROLLUP)}
FROM ({with_current_transaction(MERGING_ROLLUPS)})
GROUP BY current_transaction
HAVING last_activity <= as_of_time {{scope}}
"""

# The transactions with an event after as_of (so their rollups hold more than as_of saw): usually
# none when as_of is now; the rows of each, linked ones included; the keys of their events.
LATE = with_current_transaction(
    "SELECT transaction_id FROM transaction_rollups "
    "WHERE tenant = {tenant:String} AND last_activity > as_of_time"
)
LATE_KEYS = f"""
SELECT arrayJoin(keys) FROM transaction_rollups
WHERE tenant = {{tenant:String}}
  AND transaction_id IN ({and_linked_into(LATE)})
"""

# From the events up to as_of ({{scope}} narrows them), by the aggregates' own expressions.
EVENTS_UP_TO_AS_OF = """
SELECT * FROM events FINAL WHERE tenant = {tenant:String} AND timestamp <= as_of_time {scope}
"""
EVENT_FACTS = f"""
SELECT current_transaction AS transaction_id, {aggregates.aggregated(aggregates.ROLLUP)}
FROM ({with_current_transaction(EVENTS_UP_TO_AS_OF)})
GROUP BY current_transaction
"""

# One transaction from its events: all of it is stored under its keys (each event once, so no
# FINAL: ``storage.writes.store_events``).
ONE_TRANSACTION_FACTS = f"""
SELECT {{transaction:String}} AS transaction_id, {aggregates.aggregated(aggregates.ROLLUP)}
FROM events
WHERE tenant = {{tenant:String}} AND timestamp <= as_of_time AND correlation_id IN {{keys:Array(String)}}
HAVING count() > 0
"""

# Each transaction's state from its facts, in layers, each value computed once and read as a column
# by the next (the analyzer would otherwise copy an alias into each expression that uses it; and each
# layer costs planning time, paid on every call whatever the store's size):
# 1. the facts as the rules read them, and the definition of the transaction's workflow as arrays
#    of its own (a lambda that indexes the definitions' constants copies them for every element);
# 2. what the events say against the definition, except what depends on as_of itself: DERIVED, whose
#    columns the state snapshot keeps (``state/snapshot.py``);
# 3. what does (stuck, the SLA clock of an open transaction) and the operators' resolutions: CLOCKED.
DERIVED_COLUMNS = (
    "transaction_id",
    "workflow",
    "started_at",
    "last_activity",
    "systems",
    "event_count",
    "error_count",
    "retry_count",
    "amount",
    "currency",
    "completed_at",
    "failed_at",
    "missing",
    "violations",
    "sla_limit",
    "has_workflow",
    "stuck_after",
    "last_progress",
    "waiting",
    "waiting_systems",
    "due_since",
    "waiting_within",
)

CLOCKED = f"""
SELECT
    {", ".join(DERIVED_COLUMNS)},
    multiIf(
        failed_at IS NOT NULL, 'failed',
        completed_at IS NOT NULL, 'completed',
        has_workflow AND notEmpty(waiting)
            AND toUnixTimestamp64Micro(as_of_time) - toUnixTimestamp64Micro(last_progress)
                >= stuck_after * 1e6,
            'stuck',
        'in_progress') AS state,
    (toUnixTimestamp64Micro(multiIf(failed_at IS NOT NULL, assumeNotNull(failed_at),
                                    completed_at IS NOT NULL, assumeNotNull(completed_at),
                                    as_of_time))
     - toUnixTimestamp64Micro(started_at)) / 1e6 AS sla_elapsed,
    sla_limit > 0 AND sla_elapsed > sla_limit AS breached,
    transaction_id IN ({{resolved}}) AS resolved,
    {{reconciliation}}
FROM ({{derived}}) AS derived
{{reconciled}}
"""

DERIVED = """
SELECT
    transaction_id, workflow, started_at, last_activity, systems, event_count, error_count,
    retry_count, amount, currency, completed_at, failed_at, missing, violations, sla_limit,
    has_workflow, stuck_after, last_progress,
    -- A completed or failed transaction waits on nothing.
    if(completed_at IS NULL AND failed_at IS NULL, open_steps, CAST([], 'Array(UInt32)')) AS waiting_at,
    arrayMap(i -> expected[i], waiting_at) AS waiting,
    arrayMap(i -> expected_systems[i], waiting_at) AS waiting_systems,
    arrayMap(i -> due_times[i], waiting_at) AS due_since,
    arrayMap(i -> expected_within[i], waiting_at) AS waiting_within
FROM
(
    SELECT
        transaction_id, workflow, started_at, last_activity, systems, event_count, error_count,
        retry_count, amount, currency, has_workflow, sla_limit, stuck_after, expected,
        expected_systems, expected_within,
        if(hasAny(done, complete_on),
           arrayMin(arrayMap((s, at) -> if(has(complete_on, s), at, FAR_FUTURE), done, done_at)),
           NULL) AS completed_at,
        if(hasAny(seen, fail_on),
           arrayMin(arrayMap((s, at) -> if(has(fail_on, s), at, FAR_FUTURE), seen, seen_at)),
           NULL) AS failed_at,
        -- The failure step seen first (ties: by name).
        arrayFirst((s, at) -> has(fail_on, s) AND at = ifNull(failed_at, FAR_FUTURE), seen, seen_at)
            AS failing_step,
        if(empty(done), started_at, arrayMax(done_at)) AS last_progress,
        -- When each step became due: when the last of its prerequisites was done (or at the start).
        arrayMap(pre -> if(empty(pre), started_at,
                           arrayMax(arrayMap((s, at) -> if(has(pre, s), at, EPOCH), done, done_at))),
                 expected_after) AS due_times,
        -- The steps due: not done, not a failure step, every prerequisite done, no later step done.
        arrayFilter((i, s, pre, after_it) -> NOT has(done, s) AND NOT has(fail_on, s)
                                             AND hasAll(done, pre) AND NOT hasAny(done, after_it),
                    arrayEnumerate(expected), expected, expected_after, expected_successors) AS open_steps,
        arrayFilter((s, after_it) -> NOT has(done, s) AND NOT has(fail_on, s) AND hasAny(done, after_it),
                    expected, expected_successors) AS missing,
        -- (rule, step, the other step): out of order, or done after the workflow failed.
        arrayConcat(
            arrayMap(pair -> ('out_of_order', pair.1, pair.2),
                     arrayFilter(pair -> has(done, pair.1)
                                         AND (NOT has(done, pair.2)
                                              OR step_first_ok[pair.2] > step_first_ok[pair.1]),
                                 prerequisites)),
            arrayMap(s -> ('after_failure', s, failing_step),
                     arrayFilter((s, at) -> at > ifNull(failed_at, FAR_FUTURE) AND NOT has(fail_on, s),
                                 done, done_at))) AS violations
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
            step_first_ok,
            mapKeys(step_first) AS seen,
            mapValues(step_first) AS seen_at,
            mapKeys(step_first_ok) AS done,
            mapValues(step_first_ok) AS done_at,
            indexOf(wf_names, workflow) AS wf,
            wf > 0 AS has_workflow,
            wf_steps[wf] AS expected,
            wf_systems[wf] AS expected_systems,
            wf_after[wf] AS expected_after,
            wf_successors[wf] AS expected_successors,
            wf_within[wf] AS expected_within,
            wf_prerequisites[wf] AS prerequisites,
            wf_complete[wf] AS complete_on,
            wf_fail[wf] AS fail_on,
            wf_sla[wf] AS sla_limit,
            wf_stuck[wf] AS stuck_after
        FROM ({facts})
    )
)
"""

# Transactions resolved as of `as_of`: those whose latest resolve/reopen in the audit log is a resolve.
RESOLVED = """
SELECT transaction_id
FROM audit_log
WHERE tenant = {tenant:String}
  AND action IN ('resolve', 'reopen')
  AND at <= {as_of:DateTime64(6, 'UTC')} {keyed}
GROUP BY transaction_id
HAVING argMax(action, (at, action_id)) = 'resolve'
"""
RESOLVED_TRANSACTIONS = RESOLVED.replace("{keyed}", "")


# What the state keeper found wrong across systems (``state/reconciliation.py``): values that do not
# agree, business keys shared with another transaction. Only those rows: the others add nothing.
RECONCILED = """
SELECT transaction_id, mismatches, mismatch_fields, key_field, key_value, duplicates
FROM transaction_reconciliations FINAL
WHERE tenant = {tenant:String} AND (notEmpty(mismatch_fields) OR notEmpty(duplicates)) {keyed}
"""


RECONCILIATION_JOIN = "LEFT JOIN ({reconciled}) AS reconciled USING (transaction_id)"
RECONCILIATION_COLUMNS = "mismatches, mismatch_fields, key_field, key_value, duplicates"
# What a transaction with no row in RECONCILED has: the columns of a read that filters on none of them.
NOT_RECONCILED = (
    "'' AS mismatches, CAST([], 'Array(String)') AS mismatch_fields, '' AS key_field, '' AS key_value, "
    "CAST([], 'Array(String)') AS duplicates"
)


# A transaction in one row of its own has all its facts there: when only open transactions are
# asked for, a row that reached a step completing or failing its workflow is left out before the
# rules run (the costly part, at millions of transactions).
OPEN_ONLY = """
  AND NOT hasAny(mapKeys(step_first_ok), wf_complete[indexOf(wf_names, first_event.3)])
  AND NOT hasAny(mapKeys(step_first), wf_fail[indexOf(wf_names, first_event.3)])
"""


# --- From the state snapshot (``state/snapshot.py``) -----------------------------------------------
# The transactions an event received since ``snapshot_since`` may have changed (the transaction it
# belongs to now, after links): their state is derived again from their rollups, every other one is
# read from the snapshot. A transaction linked into another is the other's from then on.
CHANGED_SINCE_SNAPSHOT = with_current_transaction(
    "SELECT transaction_id FROM events "
    "WHERE tenant = {tenant:String} AND received_at >= {snapshot_since:DateTime64(6, 'UTC')}"
)
CHANGED_ROLLUPS = f"""
SELECT * FROM transaction_rollups
WHERE tenant = {{tenant:String}}
  AND transaction_id IN ({and_linked_into(CHANGED_SINCE_SNAPSHOT)})
"""
CHANGED_FACTS = f"""
SELECT current_transaction AS transaction_id, {aggregates.remerged(aggregates.ROLLUP)}
FROM ({with_current_transaction(CHANGED_ROLLUPS)})
GROUP BY current_transaction
HAVING last_activity <= as_of_time {{scope}}
"""
SNAPSHOT_STATES = f"""
SELECT {", ".join(DERIVED_COLUMNS)}
FROM transaction_states FINAL
WHERE tenant = {{tenant:String}} AND last_activity <= as_of_time
  AND transaction_id NOT IN (SELECT transaction_id FROM ({LINKS}) WHERE true {{keyed}})
  {{open_only}} {{scope}} {{not_changed}}
"""
NOT_CHANGED_SINCE_SNAPSHOT = (
    f"AND transaction_id NOT IN (SELECT current_transaction FROM ({CHANGED_SINCE_SNAPSHOT}))"
)
DERIVED_AGAIN = f"""
UNION ALL
SELECT {", ".join(DERIVED_COLUMNS)}
FROM ({{derived}})
"""
# One transaction's rows (``one_transaction``), read through the sort key.
ONE_KEYED = "transaction_id = {transaction:String}"
ONE_SNAPSHOT_STATE = (
    SNAPSHOT_STATES.replace("{open_only}", "")
    .replace("{scope}", f"AND {ONE_KEYED}")
    .replace("{not_changed}", "")
)
# A snapshot row knows whether its transaction completed or failed.
SNAPSHOT_OPEN_ONLY = "AND completed_at IS NULL AND failed_at IS NULL"


def summary_sql(
    one_transaction: bool = False,
    aggregates_complete: bool = True,
    open_only: bool = False,
    scope: str = "",
    snapshot: bool = False,
    changed: bool = True,
    late: bool = True,
    changed_scope: str = "",
    derive_changed: bool = True,
    keyed: str = "",
    reconciled: bool = True,
) -> str:
    """The state of every transaction (or of one, found by its keys: ``one_transaction``, from its
    events, or its snapshot row when ``snapshot``: ``snapshot.unchanged``) as of ``as_of``.

    Every transaction's facts come from the engine's rollups, one row each, except those with events
    after as_of, whose facts are aggregated from their events up to as_of by the same expressions.
    One transaction's come from its events (a handful of rows through the sort key). Until the
    aggregates hold every stored event (``aggregates_complete``: see ``storage.backfill``), every
    transaction's facts are aggregated from the events. ``open_only``: the caller keeps only
    transactions neither completed nor failed, so the others may be left out early. ``scope``: a
    condition on ``transaction_id`` and ``last_activity`` the caller applies to the result too,
    applied to the rollups before the rules run (the alert evaluator's "what changed").
    ``snapshot``: what the rules derive without as_of is read from the state snapshot, complete up to
    ``snapshot_since`` (bound), except for the transactions changed since and those with events after
    as_of, derived as above: the same answer, without deriving millions of unchanged states again.
    There ``scope`` narrows the snapshot's rows, so it is a condition over the state's columns.
    ``changed`` (no event received since ``snapshot_since``: False) and ``late`` (no event after
    as_of: False) leave out the parts that would find nothing: the analyzer plans every part, however
    few rows it reads, and these are two thirds of the statement (``snapshot.summary`` asks first).
    ``changed_scope``: a condition on ``transaction_id`` and ``last_activity`` that narrows the changed
    transactions derived again (a read of a few transactions derives only those). ``derive_changed``
    False: the changed transactions are left out instead (the alert evaluator's read: it measures
    them at its next cycle, once the snapshot holds them).
    ``keyed``: a condition on ``transaction_id`` alone that the caller applies to the result (a page's
    ids; one transaction's id with ``one_transaction``): the links, the reconciliations and the audit
    log are read for those transactions only, through their sort keys, not whole. ``reconciled``
    False: the caller neither filters on nor shows what the state keeper found wrong across systems,
    so its rows are not joined (the stuck list's LIST at 10 M events: 137 ms instead of 165 ms) and
    the columns are empty.
    """
    scoped = f"AND ({scope})" if scope else ""
    keyed = ONE_KEYED if one_transaction and not keyed else keyed
    narrowed_to = f"AND ({keyed})" if keyed else ""
    late_facts = [EVENT_FACTS.replace("{scope}", f"AND correlation_id IN ({LATE_KEYS})")] if late else []
    if one_transaction:
        derived = ONE_SNAPSHOT_STATE if snapshot else DERIVED.format(facts=ONE_TRANSACTION_FACTS)
    elif not aggregates_complete:  # an older store's events are still being backfilled into them
        derived = DERIVED.format(facts=EVENT_FACTS.replace("{scope}", ""))
    elif snapshot:
        # The changed transactions are few: derived whatever a scope over the state's columns (the
        # caller filters the result).
        narrowed = f"AND ({changed_scope})" if changed_scope else ""
        again = [CHANGED_FACTS.replace("{scope}", narrowed)] if changed and derive_changed else []
        again += late_facts
        derived = (
            SNAPSHOT_STATES.replace("{open_only}", SNAPSHOT_OPEN_ONLY if open_only else "")
            .replace("{scope}", scoped)
            .replace("{not_changed}", NOT_CHANGED_SINCE_SNAPSHOT if changed else "")
        )
        if again:
            derived += DERIVED_AGAIN.replace("{derived}", DERIVED.format(facts="\nUNION ALL\n".join(again)))
    else:
        rollups = ROLLUP_FACTS.replace("{open_only}", OPEN_ONLY if open_only else "")
        rollups = rollups.replace("{scope}", scoped)
        derived = DERIVED.format(facts="\nUNION ALL\n".join([rollups, *late_facts]))
    return PARAMETERS + CLOCKED.format(
        derived=derived.replace("{keyed}", narrowed_to),
        resolved=RESOLVED.replace("{keyed}", narrowed_to),
        reconciliation=RECONCILIATION_COLUMNS if reconciled else NOT_RECONCILED,
        reconciled=(
            RECONCILIATION_JOIN.format(reconciled=RECONCILED.replace("{keyed}", narrowed_to))
            if reconciled
            else ""
        ),
    )


def summary_parameters(workflows: Workflows, tenant: str, as_of: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {**WorkflowParameters.of(workflows).values, "tenant": tenant, "as_of": as_of, **extra}
