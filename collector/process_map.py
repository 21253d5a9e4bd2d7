"""The process map of a workflow as it really runs: directly-follows graph and variants.

A transaction's trace is its events in event-time order (ties by event id), one activity per event,
as process-mining tools such as PM4Py read an event log; so the counts here are theirs.
"""

from __future__ import annotations

import datetime as dt

from .models import MapEdge, MapNode, ProcessMap, Variant
from .storage import Store
from .transactions import EPOCH, FAR_FUTURE
from .workflows import WorkflowDefinition

TRACES = """
SELECT
    transaction_id,
    arraySort(x -> (x.1, x.3), groupArray((timestamp, step, event_id))) AS ordered,
    arrayMap(x -> x.2, ordered) AS trace,
    arrayMap(x -> toUnixTimestamp64Micro(x.1), ordered) AS times
FROM events FINAL
WHERE tenant = {tenant:String} AND workflow = {workflow:String}
GROUP BY transaction_id
HAVING min(timestamp) >= {since:DateTime64(6, 'UTC')} AND min(timestamp) <= {until:DateTime64(6, 'UTC')}
"""

VARIANTS = f"""
SELECT trace, count() AS transactions
FROM ({TRACES})
GROUP BY trace
ORDER BY transactions DESC, trace
"""

EDGES = f"""
SELECT
    pair.1 AS source,
    pair.2 AS target,
    count() AS count,
    quantiles(0.5, 0.95)(pair.3 / 1e6) AS seconds
FROM ({TRACES})
ARRAY JOIN arrayZip(arrayPopBack(trace), arrayPopFront(trace),
                    arrayMap((a, b) -> b - a, arrayPopBack(times), arrayPopFront(times))) AS pair
GROUP BY source, target
ORDER BY count DESC, source, target
"""

NODES = f"""
SELECT step, count() AS events, uniqExact(transaction_id) AS transactions, any(system_of) AS system
FROM ({TRACES})
ARRAY JOIN trace AS step
LEFT ANY JOIN
(
    SELECT step, argMax(system, timestamp) AS system_of
    FROM events
    WHERE tenant = {{tenant:String}} AND workflow = {{workflow:String}}
    GROUP BY step
) AS systems USING (step)
GROUP BY step
ORDER BY events DESC, step
"""


def process_map(
    store: Store,
    tenant: str,
    workflow: str,
    definition: WorkflowDefinition | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> ProcessMap:
    parameters = {
        "tenant": tenant,
        "workflow": workflow,
        "since": since or EPOCH,
        "until": until or FAR_FUTURE,
    }
    variants = store.rows(VARIANTS, parameters)
    total = sum(row["transactions"] for row in variants)
    expected_pairs = (
        {(before, step.name) for step in definition.steps for before in step.after} if definition else set()
    )
    defined = {step.name: step.system for step in definition.steps} if definition else {}
    nodes = [
        MapNode(
            step=row["step"],
            system=defined.get(row["step"]) or row["system"] or None,
            events=row["events"],
            transactions=row["transactions"],
            expected=row["step"] in defined,
        )
        for row in store.rows(NODES, parameters)
    ]
    return ProcessMap(
        workflow=workflow,
        since=since,
        until=until,
        transactions=total,
        nodes=nodes,
        edges=[
            MapEdge(
                source=row["source"],
                target=row["target"],
                count=row["count"],
                median_seconds=row["seconds"][0],
                p95_seconds=row["seconds"][1],
                expected=(row["source"], row["target"]) in expected_pairs,
            )
            for row in store.rows(EDGES, parameters)
        ],
        variants=[
            Variant(
                steps=list(row["trace"]), transactions=row["transactions"], share=row["transactions"] / total
            )
            for row in variants
        ],
    )
