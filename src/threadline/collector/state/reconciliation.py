"""Reconciliation: the values a transaction's systems must agree on, and its possible duplicates.

A workflow's ``reconcile:`` names a value (``amount`` with its currency, or ``attributes.<key>``),
the steps whose events carry it and a tolerance; ``unique_by:`` a business key no two of its
transactions may share within a window. Both are facts of a transaction, derived off the read path
by the state keeper (``snapshot.keep``) for the transactions an event was received for since its
last pass, or for every transaction, in slices, when the definitions changed, and stored in
``transaction_reconciliations``. The state query joins them (``rules.CLOCKED``): the queue, the
overview and the alert rules read them, never the events.

Each step's value is the one its latest event carried (event time, then arrival). Only steps that
happened are judged: two of them whose values differ beyond the tolerance (or whose amounts are in
different currencies, unless the rule says ``currency: ignore``) make a ``differs`` mismatch, a step
whose latest event carried no value a ``missing`` one.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..models import MISMATCHES, Mismatch, MismatchStep
from ..storage import Store
from ..storage.keys import and_linked_into, with_current_transaction
from ..storage.writes import utc
from ..workflows import AMOUNT, ATTRIBUTES, Reconciliation, WorkflowDefinition, Workflows
from .rules import CHANGED_SINCE_SNAPSHOT


@dataclass(frozen=True)
class StepValue:
    """What a step's latest event carried."""

    step: str
    system: str
    at: dt.datetime
    amount: float | None
    currency: str
    attributes: Mapping[str, str]

    def value(self, path: str) -> float | str | None:
        if path == AMOUNT:
            return self.amount
        return self.attributes.get(path.removeprefix(ATTRIBUTES))


def _number(value: float | str) -> float | None:
    if isinstance(value, float | int):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def _agree(rule: Reconciliation, a: StepValue, b: StepValue) -> bool:
    first, second = a.value(rule.value), b.value(rule.value)
    assert first is not None and second is not None
    priced = rule.value == AMOUNT and not rule.ignore_currency and a.currency and b.currency
    if priced and a.currency != b.currency:
        return False
    x, y = _number(first), _number(second)
    if x is None or y is None:  # text agrees only when equal
        return first == second
    return rule.tolerance.agree(x, y)


def judge(definition: WorkflowDefinition, steps: Mapping[str, StepValue]) -> list[Mismatch]:
    """The mismatches of one transaction of ``definition``, from its steps' latest values."""
    found: list[Mismatch] = []
    for rule in definition.reconcile:
        happened = [steps[name] for name in rule.steps if name in steps]
        carried = [step for step in happened if step.value(rule.value) is not None]
        missing = [step for step in happened if step.value(rule.value) is None]
        if missing:
            views = [MismatchStep(step=step.step, system=step.system, value=None) for step in missing]
            found.append(
                Mismatch(field=rule.value, kind="missing", steps=views, tolerance=rule.tolerance.text)
            )
        if not all(_agree(rule, a, b) for a, b in itertools.combinations(carried, 2)):
            views = [
                MismatchStep(
                    step=step.step,
                    system=step.system,
                    value=step.value(rule.value),
                    currency=(step.currency or None) if rule.value == AMOUNT else None,
                )
                for step in carried
            ]
            found.append(
                Mismatch(field=rule.value, kind="differs", steps=views, tolerance=rule.tolerance.text)
            )
    return found


def latest_value(steps: Mapping[str, StepValue], path: str) -> str:
    """The value ``path`` names as the latest of the steps' events that carries one says (ties: by
    step name); empty when none does."""
    carrying = [step for step in steps.values() if step.value(path) not in (None, "")]
    if not carrying:
        return ""
    return str(max(carrying, key=lambda step: (step.at, step.step)).value(path))


def business_key(definition: WorkflowDefinition, steps: Mapping[str, StepValue]) -> str:
    """The transaction's ``unique_by`` key: carried by the latest of its steps' events that has one."""
    return latest_value(steps, definition.unique_by.value) if definition.unique_by else ""


# --- Deriving and keeping them ---------------------------------------------------------------------

# Each step's latest event (time, then arrival) of the events given, per transaction (the one each
# belongs to now), with only the attributes some rule reads.
_EVENTS = """
SELECT transaction_id, workflow, step, system, timestamp, seq, event_id, amount, currency,
       mapFilter((k, v) -> has({attribute_keys:Array(String)}, k), attributes) AS carried
FROM events
WHERE tenant = {tenant:String} AND workflow IN {workflows:Array(String)} {events}
"""
STEP_VALUES = f"""
SELECT
    transaction_id,
    argMin(step_workflow, first_at) AS workflow,
    min(first_at) AS started_at,
    groupArray((step, latest.1, latest.2, latest.3, latest.4, latest.5)) AS steps
FROM
(
    SELECT
        current_transaction AS transaction_id,
        step,
        argMin(workflow, (timestamp, seq, event_id)) AS step_workflow,
        min(timestamp) AS first_at,
        argMax((system, timestamp, amount, currency, carried), (timestamp, seq, event_id)) AS latest
    FROM ({with_current_transaction(_EVENTS)})
    GROUP BY current_transaction, step
)
WHERE {{scope}}
GROUP BY transaction_id
"""
# The events of the transactions changed since the snapshot's mark: every key of theirs.
CHANGED_KEYS = f"""
SELECT arrayJoin(keys) FROM transaction_rollups
WHERE tenant = {{tenant:String}} AND transaction_id IN ({and_linked_into(CHANGED_SINCE_SNAPSHOT)})
"""
CHANGED_STEP_VALUES = STEP_VALUES.replace("{events}", f"AND correlation_id IN ({CHANGED_KEYS})").replace(
    "{scope}", "1"
)
SLICE_STEP_VALUES = STEP_VALUES.replace("{events}", "").replace(
    "{scope}", "transaction_id >= {low:String} AND transaction_id < {high:String}"
)

COLUMNS = (
    "tenant",
    "transaction_id",
    "workflow",
    "started_at",
    "mismatches",
    "mismatch_fields",
    "key_field",
    "key_value",
    "duplicates",
    "reconciled_at",
    "version",
)
_STORED = ", ".join(COLUMNS[1:-2])
OF_TRANSACTIONS = f"""
SELECT {_STORED} FROM transaction_reconciliations FINAL
WHERE tenant = {{tenant:String}} AND transaction_id IN {{transactions:Array(String)}}
"""
# The rows with one of the keys. The key is not in the sort key: the ids are found in the key column
# alone, and only their rows are read whole and merged (FINAL over every row took 2.7 s at 10 M).
WITH_KEYS = f"""
SELECT {_STORED} FROM transaction_reconciliations FINAL
WHERE tenant = {{tenant:String}} AND key_value IN {{keys:Array(String)}} AND transaction_id IN (
    SELECT transaction_id FROM transaction_reconciliations
    WHERE tenant = {{tenant:String}} AND key_value IN {{keys:Array(String)}}
)
"""
# Every row whose key another transaction of its workflow shares (an outdated version of a row may
# make a key a candidate: its rows are then read merged, and linked only if they still share it).
SHARED_KEYS = f"""
SELECT {_STORED} FROM transaction_reconciliations FINAL
WHERE tenant = {{tenant:String}} AND (workflow, key_value) IN (
    SELECT workflow, key_value FROM transaction_reconciliations
    WHERE tenant = {{tenant:String}} AND key_value != ''
    GROUP BY workflow, key_value HAVING uniqExact(transaction_id) > 1
)
"""
FORGET = "DELETE FROM transaction_reconciliations WHERE tenant = {tenant:String}"
ANY_STORED = "SELECT count() > 0 AS stored FROM transaction_reconciliations WHERE tenant = {tenant:String}"


@dataclass(frozen=True)
class Reconciled:
    """One stored row: what was derived for a transaction."""

    transaction_id: str
    workflow: str
    started_at: dt.datetime
    mismatches: str  # JSON, as the API shows them
    mismatch_fields: tuple[str, ...]
    key_field: str
    key_value: str
    duplicates: tuple[str, ...]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Reconciled:
        return cls(
            row["transaction_id"],
            row["workflow"],
            utc(row["started_at"]),
            row["mismatches"],
            tuple(row["mismatch_fields"]),
            row["key_field"],
            row["key_value"],
            tuple(row["duplicates"]),
        )


def reconciled_workflows(workflows: Workflows) -> dict[str, WorkflowDefinition]:
    return {d.name: d for d in workflows if d.reconcile or d.unique_by is not None}


def attribute_keys(definitions: Iterable[WorkflowDefinition]) -> list[str]:
    paths = {rule.value for d in definitions for rule in d.reconcile}
    paths |= {d.unique_by.value for d in definitions if d.unique_by is not None}
    return sorted(path.removeprefix(ATTRIBUTES) for path in paths if path.startswith(ATTRIBUTES))


def step_values(row: Mapping[str, Any]) -> dict[str, StepValue]:
    """A transaction's steps' latest values, from its row of STEP_VALUES."""
    return {
        step: StepValue(step, system, utc(at), amount, currency, dict(attributes))
        for step, system, at, amount, currency, attributes in row["steps"]
    }


def derive(definition: WorkflowDefinition, row: Mapping[str, Any]) -> Reconciled:
    """A transaction's row from its steps' latest values (a row of STEP_VALUES)."""
    steps = step_values(row)
    mismatches = judge(definition, steps)
    return Reconciled(
        transaction_id=row["transaction_id"],
        workflow=definition.name,
        started_at=utc(row["started_at"]),
        mismatches=MISMATCHES.dump_json(mismatches).decode() if mismatches else "",
        mismatch_fields=tuple(dict.fromkeys(mismatch.field for mismatch in mismatches)),
        key_field=definition.unique_by.value if definition.unique_by else "",
        key_value=business_key(definition, steps),
        duplicates=(),
    )


def _linked(
    definitions: Mapping[str, WorkflowDefinition], rows: Iterable[Reconciled], among: Iterable[Reconciled]
) -> list[Reconciled]:
    """``rows`` with their duplicates: the transactions of ``among`` (``rows`` included) of the same
    workflow and business key that started within its window."""
    sharing: dict[tuple[str, str], list[Reconciled]] = defaultdict(list)
    for row in among:
        if row.key_value:
            sharing[row.workflow, row.key_value].append(row)

    def duplicates_of(row: Reconciled) -> tuple[str, ...]:
        definition = definitions.get(row.workflow)
        if definition is None or definition.unique_by is None or not row.key_value:
            return ()
        within = definition.unique_by.within_s
        return tuple(
            sorted(
                other.transaction_id
                for other in sharing[row.workflow, row.key_value]
                if other.transaction_id != row.transaction_id
                and (within is None or abs((other.started_at - row.started_at).total_seconds()) <= within)
            )
        )

    return [replace(row, duplicates=duplicates_of(row)) for row in rows]


def _with_duplicates(
    store: Store, tenant: str, definitions: Mapping[str, WorkflowDefinition], derived: list[Reconciled]
) -> list[Reconciled]:
    """``derived`` with their duplicates, and the stored rows whose duplicates change with them (the
    transactions that shared a key with one of them, or share one now): each links to the other."""
    if not derived:
        return []
    ids = [row.transaction_id for row in derived]
    before = [
        Reconciled.of(row) for row in store.rows(OF_TRANSACTIONS, {"tenant": tenant, "transactions": ids})
    ]
    keys = sorted({row.key_value for row in [*derived, *before] if row.key_value})
    if not keys:
        return derived
    ours = set(ids)
    others = [
        row
        for row in (Reconciled.of(found) for found in store.rows(WITH_KEYS, {"tenant": tenant, "keys": keys}))
        if row.transaction_id not in ours
    ]
    among = [*derived, *others]
    return _linked(definitions, derived, among) + _changed(definitions, others, among)


def _changed(
    definitions: Mapping[str, WorkflowDefinition], stored: list[Reconciled], among: list[Reconciled]
) -> list[Reconciled]:
    """The stored rows whose duplicates differ once linked among ``among``, linked."""
    linked = _linked(definitions, stored, among)
    return [row for row, old in zip(linked, stored, strict=True) if row.duplicates != old.duplicates]


def _store(store: Store, tenant: str, rows: list[Reconciled]) -> None:
    now, version = dt.datetime.now(dt.UTC), time.time_ns() // 1000
    store.insert(
        "transaction_reconciliations",
        [
            [
                tenant,
                row.transaction_id,
                row.workflow,
                row.started_at,
                row.mismatches,
                list(row.mismatch_fields),
                row.key_field,
                row.key_value,
                list(row.duplicates),
                now,
                version,
            ]
            for row in rows
        ],
        COLUMNS,
    )


def keep(
    store: Store, workflows: Workflows, tenant: str, rows: Iterable[Mapping[str, Any]], link: bool = True
) -> int:
    """Derive and store the rows of the transactions of reconciled workflows among ``rows`` (of
    STEP_VALUES, read by ``transaction_facts``). ``link=False`` leaves their duplicates to
    ``link_all`` (a pass over every transaction, slice by slice, links them once at its end)."""
    definitions = reconciled_workflows(workflows)
    derived = [derive(definitions[row["workflow"]], row) for row in rows if row["workflow"] in definitions]
    kept = _with_duplicates(store, tenant, definitions, derived) if link else derived
    _store(store, tenant, kept)
    return len(kept)


def link_all(store: Store, workflows: Workflows, tenant: str) -> int:
    """Link every stored transaction to its duplicates; the number of rows that changed. One read of
    the rows whose key is shared, instead of a lookup of each slice's keys in every row."""
    definitions = reconciled_workflows(workflows)
    shared = [Reconciled.of(row) for row in store.rows(SHARED_KEYS, {"tenant": tenant})]
    changed = _changed(definitions, shared, shared)
    _store(store, tenant, changed)
    return len(changed)


def forget(store: Store, tenant: str) -> None:
    """Forget every row derived for the tenant (the definitions changed: all are derived again)."""
    if store.rows(ANY_STORED, {"tenant": tenant})[0]["stored"]:
        store.command(FORGET, {"tenant": tenant})
