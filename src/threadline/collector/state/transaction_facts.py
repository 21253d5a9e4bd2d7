"""The facts of a transaction the state keeper derives from its steps' latest values: its
reconciliation (``reconciliation``) and its dimensions (``dimensions``).

Both are derived from the same values (``reconciliation.STEP_VALUES``: each step's latest event,
with the attributes some rule or dimension reads), so a pass reads them once for both: reading and
decoding them is most of what deriving either costs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ..storage import Store
from ..workflows import Workflows
from . import dimensions, reconciliation
from .reconciliation import CHANGED_STEP_VALUES, SLICE_STEP_VALUES


def keep_changed(store: Store, workflows: Workflows, tenant: str, snapshot_since: dt.datetime) -> None:
    """Derive again the facts of the transactions an event was received for since ``snapshot_since``."""
    _keep(store, workflows, tenant, CHANGED_STEP_VALUES, {"snapshot_since": snapshot_since})


def keep_all(store: Store, workflows: Workflows, tenant: str, slices: Iterable[Mapping[str, str]]) -> None:
    """Derive every transaction's facts again, slice by slice (the definitions changed): what was
    derived with the old ones is forgotten first, and the duplicates linked once, at the end."""
    reconciliation.forget(store, tenant)
    dimensions.forget(store, tenant)
    for part in slices:
        _keep(store, workflows, tenant, SLICE_STEP_VALUES, part, link=False)
    reconciliation.link_all(store, workflows, tenant)


def _keep(
    store: Store, workflows: Workflows, tenant: str, sql: str, bound: Mapping[str, Any], link: bool = True
) -> None:
    reconciled = reconciliation.reconciled_workflows(workflows)
    dimensioned = dimensions.dimensioned_workflows(workflows)
    if not reconciled and not dimensioned:
        return
    keys = {
        *reconciliation.attribute_keys(reconciled.values()),
        *dimensions.attribute_keys(dimensioned.values()),
    }
    parameters = {
        **bound,
        "tenant": tenant,
        "workflows": sorted(reconciled.keys() | dimensioned.keys()),
        "attribute_keys": sorted(keys),
    }
    rows = store.rows(sql, parameters)
    reconciliation.keep(store, workflows, tenant, rows, link)
    dimensions.keep(store, workflows, tenant, rows)
