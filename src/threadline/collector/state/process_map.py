"""The process map of a workflow as it really runs: directly-follows graph and variants.

A transaction's trace is its events in event-time order (ties by arrival), one activity per event,
as process-mining tools such as PM4Py read an event log; so the counts here are theirs. A workflow
has a map whether or not it is defined: a replayed log's process is drawn from its events alone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..models import MapEdge, MapNode, ProcessMap, StepDefinitionView, Variant, WorkflowView
from ..schema import EARLIEST, LATEST
from ..storage import Store, aggregates
from ..storage.keys import LINKED, several_rows, with_current_transaction
from ..workflows import WorkflowDefinition, Workflows
from . import conformance, dimensions
from .dimensions import DimensionFilter
from .transactions import utc

# Each transaction's trace in this workflow, from the engine-kept traces: one row per transaction,
# read as stored where the engine has merged its rows, merged here where it has not yet or a link
# joined transactions (FINAL would merge every row's trace array again: 1.5-1.9x slower at 10 M
# events). Events in order of event time, then arrival; only transactions that started in the range.
TRACES = """
SELECT
    transaction_id,
    arraySort(x -> (x.1, x.2, x.3), trace) AS ordered,
    arrayMap(x -> x.4, ordered) AS steps,
    arrayMap(x -> x.5, ordered) AS step_systems,
    arrayMap(x -> toUnixTimestamp64Micro(x.1), ordered) AS times
FROM ({traces})
WHERE started_at >= {{since:DateTime64(6, 'UTC')}} AND started_at <= {{until:DateTime64(6, 'UTC')}}
  AND {{in_slice}}
"""

_WORKFLOW = "tenant = {tenant:String} AND workflow = {workflow:String}"
MERGING_TRACES = f"""
SELECT * FROM workflow_traces
WHERE {_WORKFLOW}
  AND (cityHash64(transaction_id) IN {several_rows("workflow_traces", _WORKFLOW)}
       OR transaction_id IN {LINKED})
"""

STORED_TRACES = f"""
SELECT transaction_id, started_at, trace
FROM workflow_traces
WHERE {_WORKFLOW}
  AND cityHash64(transaction_id) NOT IN {several_rows("workflow_traces", _WORKFLOW)}
  AND transaction_id NOT IN {LINKED}
UNION ALL
SELECT current_transaction, min(started_at), groupArrayArray(trace)
FROM ({with_current_transaction(MERGING_TRACES)})
GROUP BY current_transaction
"""

# The same from the events, while the stored traces do not hold every stored event yet.
WORKFLOW_EVENTS = "SELECT * FROM events FINAL WHERE tenant = {tenant:String} AND workflow = {workflow:String}"
EVENT_TRACES = f"""
SELECT current_transaction AS transaction_id, {aggregates.aggregated(aggregates.TRACE)}
FROM ({with_current_transaction(WORKFLOW_EVENTS)})
GROUP BY current_transaction
"""

# The workflows the stored traces hold, whether defined or not, and their latest row's start: a read
# of two narrow columns. A row not merged yet may hold only a transaction's later events, so its
# start is not always a transaction's: LATEST_STARTS finds the latest true start among the
# transactions with a row in a window before that (each start is the least of its rows'; the sort
# key, tenant, workflow, transaction, finds their rows). Any transaction started in the window has
# its first row there, so a start found is the latest; with none, a wider window is tried.
MAX_SEEN_WORKFLOWS = 1000
SEEN_WORKFLOWS = """
SELECT workflow, max(started_at) AS last_started_at
FROM workflow_traces
WHERE tenant = {tenant:String} AND (empty({workflow:String}) OR workflow = {workflow:String})
GROUP BY workflow
ORDER BY workflow
LIMIT {limit:UInt32}
"""
# ``since``: each workflow's window start, in the order of ``workflows``.
_IN_WINDOW = "started_at >= {since:Array(DateTime64(6, 'UTC'))}[indexOf({workflows:Array(String)}, workflow)]"
LATEST_STARTS = f"""
SELECT workflow, max(started_at) AS last_started_at
FROM (
    SELECT workflow, transaction_id, min(started_at) AS started_at
    FROM workflow_traces
    WHERE tenant = {{tenant:String}} AND workflow IN {{workflows:Array(String)}}
      AND transaction_id IN (
          SELECT transaction_id FROM workflow_traces
          WHERE tenant = {{tenant:String}} AND workflow IN {{workflows:Array(String)}} AND {_IN_WINDOW}
      )
    GROUP BY workflow, transaction_id
)
WHERE {_IN_WINDOW}
GROUP BY workflow
"""
# The windows tried, the last every transaction of the workflow (seconds at millions of them).
START_WINDOWS = (dt.timedelta(minutes=10), dt.timedelta(days=1), None)
# The same from the events, while the stored traces do not hold every stored event yet.
SEEN_WORKFLOWS_FROM_EVENTS = """
SELECT workflow, max(started_at) AS last_started_at
FROM (
    SELECT workflow, min(timestamp) AS started_at
    FROM events
    WHERE tenant = {tenant:String} AND (empty({workflow:String}) OR workflow = {workflow:String})
    GROUP BY workflow, correlation_id
)
GROUP BY workflow
ORDER BY workflow
LIMIT {limit:UInt32}
"""

# The systems of a variant are those of its first transaction in id order: deterministic.
VARIANTS = f"""
SELECT steps, count() AS transactions, argMin(step_systems, transaction_id) AS systems
FROM ({TRACES})
GROUP BY steps
ORDER BY transactions DESC, steps
"""

EDGES = f"""
SELECT
    pair.1 AS source,
    pair.2 AS target,
    count() AS count,
    quantiles(0.5, 0.95)(pair.3 / 1e6) AS seconds
FROM ({TRACES})
ARRAY JOIN arrayZip(arrayPopBack(steps), arrayPopFront(steps),
                    arrayMap((a, b) -> b - a, arrayPopBack(times), arrayPopFront(times))) AS pair
GROUP BY source, target
ORDER BY count DESC, source, target
"""


def expected_edge(definition: WorkflowDefinition | None, source: str, target: str) -> bool:
    """Whether the definition's order allows ``target`` to follow ``source`` directly.

    It does when both are steps of the definition, and
    - ``target`` is not a step that must come, directly or not, before ``source`` (going back), and
    - no step must come after ``source`` and before ``target`` (skipping a required step).
    So two parallel steps, neither of which must come before the other (erp.customer.validated and
    cpq.quote.approved, both after crm.opportunity.won), follow each other as expected in either
    order, and so does a step repeated (a retry). A step the definition does not name, or a
    workflow without a definition, makes no edge expected: there is no order to judge it by.
    """
    if definition is None or definition.step(source) is None or definition.step(target) is None:
        return False
    return target not in definition.predecessors(source) and not (
        definition.successors(source) & definition.predecessors(target)
    )


@dataclass(frozen=True)
class WorkflowSeen:
    name: str
    last_started_at: dt.datetime  # when its latest transaction started


def seen_workflows(store: Store, tenant: str, workflow: str = "") -> list[WorkflowSeen]:
    """The workflows with stored events (or only ``workflow``), by name; at most MAX_SEEN_WORKFLOWS."""
    parameters = {"tenant": tenant, "workflow": workflow, "limit": MAX_SEEN_WORKFLOWS}
    if not store.aggregates_complete():
        rows = store.rows(SEEN_WORKFLOWS_FROM_EVENTS, parameters)
        return [WorkflowSeen(row["workflow"], utc(row["last_started_at"])) for row in rows]
    rows = store.rows(SEEN_WORKFLOWS, parameters)
    latest_row = {row["workflow"]: utc(row["last_started_at"]) for row in rows}
    started: dict[str, dt.datetime] = {}
    for window in START_WINDOWS:
        left = sorted(set(latest_row) - set(started))
        if not left:
            break
        since = [latest_row[name] - window if window else EARLIEST for name in left]
        found = store.rows(LATEST_STARTS, {"tenant": tenant, "workflows": left, "since": since})
        started.update((row["workflow"], utc(row["last_started_at"])) for row in found)
    return [WorkflowSeen(name, started[name]) for name in sorted(latest_row)]


def workflow_views(store: Store, workflows: Workflows, tenant: str) -> list[WorkflowView]:
    """The definitions in file order, then the workflows only seen in stored events, by name."""
    seen = seen_workflows(store, tenant)
    started = {workflow.name: workflow.last_started_at for workflow in seen}
    defined = [
        WorkflowView(
            name=definition.name,
            defined=True,
            last_started_at=started.get(definition.name),
            sla_seconds=definition.sla_s,
            stuck_after_seconds=definition.stuck_after_s,
            complete_on=list(definition.complete_on),
            fail_on=list(definition.fail_on),
            steps=[
                StepDefinitionView(
                    name=s.name, system=s.system, after=list(s.after), within_seconds=s.within_s
                )
                for s in definition.steps
            ],
            dimensions=list(definition.dimensions),
        )
        for definition in workflows
    ]
    undefined = [
        WorkflowView(
            name=workflow.name,
            defined=False,
            last_started_at=workflow.last_started_at,
            sla_seconds=None,
            stuck_after_seconds=None,
            complete_on=[],
            fail_on=[],
            steps=[],
        )
        for workflow in seen
        if workflows.get(workflow.name) is None
    ]
    return defined + undefined


def _nodes(variants: list[dict[str, Any]], defined: dict[str, str | None]) -> list[MapNode]:
    """Steps with their events and transactions, counted from the variants (one statement less)."""
    events: Counter[str] = Counter()
    transactions: Counter[str] = Counter()
    systems: dict[str, str] = {}
    for variant in variants:  # most common first: a step's system is the one of its commonest variant
        for step, system in zip(variant["steps"], variant["systems"], strict=True):
            events[step] += variant["transactions"]
            systems.setdefault(step, system)
        for step in set(variant["steps"]):
            transactions[step] += variant["transactions"]
    return [
        MapNode(
            step=step,
            system=defined.get(step) or systems[step] or None,
            events=count,
            transactions=transactions[step],
            expected=step in defined,
        )
        for step, count in sorted(events.items(), key=lambda item: (-item[1], item[0]))
    ]


def process_map(
    store: Store,
    tenant: str,
    workflow: str,
    definition: WorkflowDefinition | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    dimension_filters: tuple[DimensionFilter, ...] = (),
) -> ProcessMap:
    """The map of the transactions started in the range that have every value of ``dimension_filters``."""
    parameters = {
        "tenant": tenant,
        "workflow": workflow,
        "since": since or EARLIEST,
        "until": until or LATEST,
        "dimension_filters": dimensions.bound(dimension_filters),
    }
    traces = STORED_TRACES if store.aggregates_complete() else EVENT_TRACES
    in_slice = dimensions.condition(dimension_filters)
    variants = store.rows(VARIANTS.format(traces=traces).replace("{in_slice}", in_slice), parameters)
    total = sum(row["transactions"] for row in variants)
    defined = {step.name: step.system for step in definition.steps} if definition else {}
    verdicts = [conformance.judge(definition, row["steps"]) if definition else None for row in variants]
    judged = [
        conformance.Judged(row["transactions"], verdict)
        for row, verdict in zip(variants, verdicts, strict=True)
        if verdict
    ]
    return ProcessMap(
        workflow=workflow,
        since=since,
        until=until,
        transactions=total,
        nodes=_nodes(variants, defined),
        edges=[
            MapEdge(
                source=row["source"],
                target=row["target"],
                count=row["count"],
                median_seconds=row["seconds"][0],
                p95_seconds=row["seconds"][1],
                expected=expected_edge(definition, row["source"], row["target"]),
            )
            for row in store.rows(EDGES.format(traces=traces).replace("{in_slice}", in_slice), parameters)
        ],
        variants=[
            Variant(
                steps=list(row["steps"]),
                transactions=row["transactions"],
                share=row["transactions"] / total,
                outcome=verdict.outcome if verdict else None,
                conforming=verdict.conforming if verdict else None,
                deviations=list(verdict.deviations) if verdict else [],
            )
            for row, verdict in zip(variants, verdicts, strict=True)
        ],
        conformance=conformance.summary(workflow, definition, judged),
    )
