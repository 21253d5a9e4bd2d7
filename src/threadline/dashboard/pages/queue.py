"""Operations queue (``/queue``), for operations and on-call: what needs a person now.

Stuck, failed, SLA-breached and governance-violating transactions, filterable by workflow, system,
state, issue and how long they have waited (all in the URL), with where each waits and since when.
Completed transactions (late ones, say) are history: they are listed only when the state filter asks.
Transactions an operator marked resolved have been dealt with: they are left out whatever the filters.
Above them, the open exceptions grouped by error kind and system (exception_groups.py), each with
its acknowledgement. One click on a row opens the transaction; rows ticked in their checkboxes are
resolved or acknowledged together from the bar above the grid, with one comment (an audit entry each).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Input, NoUpdate, Output, State, dcc, html

from .. import exception_groups
from .. import formatting as fmt
from ..actions import ActionRequest, button, cannot_act
from ..components import card, empty_state, icon, labelled, page_header, select
from ..grids import column, grid
from ..page import PageContext, Rendered
from ..schema import DimensionValues, TransactionSummary
from ..urls import QUEUE, Query, age_seconds, href, search_of, transaction_path

ISSUES = {
    "stuck": "Stuck",
    "failed": "Failed",
    "breached": "SLA breached",
    "violations": "Governance violation",
    "mismatch": "Values disagree",
    "duplicate": "Possible duplicate",
    "will_breach": "Will breach SLA",
}
# Issues the API filters on itself (`issue=`); a completed transaction can have them too.
RECONCILIATION_ISSUES = ("mismatch", "duplicate")
STATES = {"stuck": "Stuck", "failed": "Failed", "in_progress": "In progress", "completed": "Completed"}
OPEN_STATES = ["stuck", "failed", "in_progress"]  # completed ones are history: shown only when asked for
AGES = {"15m": "15 minutes", "1h": "1 hour", "4h": "4 hours", "1d": "1 day", "3d": "3 days"}
LIMIT = 1000
FULL_PAGE_ROWS = 60  # a longer queue scrolls inside its table


def issues_of(item: TransactionSummary) -> set[str]:
    """The reasons a transaction is in the queue."""
    found: set[str] = {"stuck", "failed"} & {item["state"]}
    if item["sla"]["breached"]:
        found.add("breached")
    if item["violations"]:
        found.add("violations")
    if item.get("mismatches"):
        found.add("mismatch")
    if item.get("duplicates"):
        found.add("duplicate")
    if will_breach(item):
        found.add("will_breach")
    return found


def will_breach(item: TransactionSummary) -> bool:
    """Its forecast says it will breach its SLA, which it has not yet."""
    forecast = item.get("forecast")
    return bool(forecast and forecast["breach_expected"]) and not item["sla"]["breached"]


def forecast_text(item: TransactionSummary, now: dt.datetime) -> str:
    """ "will breach in 40m", "ETA in 2h 10m", "not expected to complete" (stuck, and its like seldom
    completed), or a dash without a forecast."""
    forecast = item.get("forecast")
    if not forecast:
        return fmt.DASH
    if will_breach(item):
        return f"will breach in {fmt.duration(forecast['lead_seconds'], parts=1)}"
    if forecast["completion_expected"] is False:
        return "not expected to complete"
    if not forecast["eta"]:
        return fmt.DASH
    return f"ETA {fmt.ago(forecast['eta'], now)}"


def waiting_seconds(item: TransactionSummary, now: dt.datetime) -> float | None:
    """How long it has waited: since its oldest due step, or since it failed."""
    if item["state"] == "failed" and item["failed_at"]:
        moment = fmt.parse_time(item["failed_at"])
    elif item["waiting_on"]:
        moment = min(fmt.parse_time(w["due_since"]) or now for w in item["waiting_on"])
    else:
        return None
    return (now - moment).total_seconds() if moment else None


def _fetch(
    context: PageContext,
    issues: list[str],
    states: list[str],
    workflow: str,
    system: str,
    dimensions: list[str],
) -> tuple[list[TransactionSummary], int, bool]:
    """Ask the API for as narrow a set as it can filter; several issues are matched here (any of them).

    Every issue is part of the API's attention set, which leaves resolved transactions out: so
    ``attention`` goes with every query, whichever issue narrows it further.
    """
    chosen, states = states, states or OPEN_STATES
    filters: dict[str, Any] = {
        "workflow": workflow,
        "system": system,
        "states": states,
        "attention": True,
        "limit": LIMIT,
        "dimensions": dimensions,
    }
    if len(issues) == 1 and issues[0] in ("stuck", "failed"):
        filters["states"] = [state for state in states if state == issues[0]]
        if not filters["states"]:
            return [], 0, False  # e.g. stuck ones among the completed: none
    elif issues == ["breached"]:
        filters["breached"] = True
    elif issues == ["violations"]:
        filters["violations"] = True
    elif len(issues) == 1 and issues[0] in RECONCILIATION_ISSUES:
        filters["issues"] = issues
        filters["states"] = chosen  # none chosen: every state (a completed one can disagree too)
    elif issues == ["will_breach"]:  # open, not in the attention set yet: soonest breach first
        filters.update(attention=False, predicted_breach=True, sort="predicted_breach")
    page = context.client.transactions(**filters)
    items = [item for item in page["items"] if not issues or issues_of(item) & set(issues)]
    return items, page["total"], page["next_cursor"] is not None


def dimension_options(found: list[DimensionValues], chosen: list[str]) -> list[dict[str, str]]:
    """``region: EMEA (1,204)`` for each dimension's commonest values (value ``region:EMEA``); a value
    in the URL but not among them stays choosable."""
    options = {
        f"{dimension['dimension']}:{value['value']}": (
            f"{dimension['dimension']}: {value['value']} ({fmt.count(value['transactions'])})"
        )
        for dimension in found
        for value in dimension["values"]
    }
    for value in chosen:
        options.setdefault(value, value.replace(":", ": ", 1))
    return [{"label": label, "value": value} for value, label in options.items()]


def render(context: PageContext) -> Rendered:
    """The queue for the filters in the URL, longest waiting first."""
    query = context.query
    workflow, system = query.get("workflow"), query.get("system")
    issues = [issue for issue in query.list("issue") if issue in ISSUES]
    min_age = age_seconds(query.get("age"))
    states = [state for state in query.list("state") if state in STATES]
    workflows = context.client.workflows()
    systems = sorted({s["system"] for w in workflows for s in w["steps"] if s["system"]})
    declared = any(w.get("dimensions") for w in workflows)
    dimension_values = context.client.dimensions() if declared else []
    dimensions = query.list("dimension")
    items, total, truncated = _fetch(context, issues, states, workflow, system, dimensions)
    now = context.now
    if min_age is not None:
        items = [item for item in items if (waiting_seconds(item, now) or 0) >= min_age]
    filters = html.Div(
        [
            labelled(
                "Workflow", select("queue-workflow", [w["name"] for w in workflows], workflow or None, "All")
            ),
            labelled("System", select("queue-system", systems, system or None, "All", width=160)),
            labelled(
                "State",
                select(
                    "queue-state",
                    [{"label": label, "value": value} for value, label in STATES.items()],
                    states,
                    "Not completed",
                    multi=True,
                    width=210,
                ),
            ),
            labelled(
                "Issue",
                select(
                    "queue-issue",
                    [{"label": label, "value": value} for value, label in ISSUES.items()],
                    issues,
                    "Any issue",
                    multi=True,
                    width=240,
                ),
            ),
            html.Div(
                labelled(
                    "Dimension",
                    select(
                        "queue-dimension",
                        dimension_options(dimension_values, dimensions),
                        dimensions,
                        "Any",
                        multi=True,
                        width=220,
                    ),
                ),
                hidden=not declared,  # rendered all the same: the filter callback takes it as an input
            ),
            labelled(
                "Waiting longer than",
                select(
                    "queue-age",
                    [{"label": label, "value": value} for value, label in AGES.items()],
                    query.get("age") or None,
                    "Any time",
                    width=160,
                ),
            ),
        ],
        className="tl-filters",
    )
    header = page_header(
        "Operations queue",
        "Transactions that need a person: stuck, failed, past their SLA or out of order. "
        "Click a row to open it.",
        filters,
    )
    counts = _counts(items, query)
    exceptions = exception_groups.panel(context, workflow, system)
    if not items:
        filtered = bool(workflow or system or issues or min_age or states or dimensions)
        body = empty_state(
            "Nothing needs attention" if not filtered else "No transaction matches these filters",
            "Every transaction is progressing within its SLA."
            if not filtered
            else "Widen the filters to see more of the queue.",
            "check2-circle" if not filtered else "funnel",
            None
            if not filtered
            else dcc.Link("Clear filters", href=href(QUEUE), className="btn btn-outline-primary"),
        )
        return Rendered("Queue", [header, counts, exceptions, card(body=body)])
    note = (
        f"Showing the {len(items):,} most recently active of {total:,}; narrow the filters to see the rest."
        if truncated
        else f"{len(items):,} transaction{'s' if len(items) != 1 else ''}, longest waiting first"
    )
    table = grid(
        "queue-grid",
        _columns(by_breach=issues == ["will_breach"]),
        [_row(item, now, context) for item in items],
        row_id="key",
        height=None if len(items) <= FULL_PAGE_ROWS else 720,
        clickable=True,
    )
    table.dashGridOptions["getRowHeight"] = {"function": "params.data.height"}
    table.className += " tl-grid-middle"
    _selectable(table)
    content = [header, counts, exceptions, _bulk_bar(context), card(None, table, flush=True), _note(note)]
    return Rendered(f"Queue ({len(items)})", content)


# --- Bulk actions: rows selected in the grid, resolved or acknowledged with one comment ------------

SELECTION_COLUMN = "ag-Grid-SelectionColumn"  # AG Grid's own checkbox column


def _selectable(table: Any) -> None:
    """Rows selected by their checkboxes only: a click elsewhere on a row still opens it."""
    table.dashGridOptions["rowSelection"] = {
        "mode": "multiRow",
        "checkboxes": True,
        "headerCheckbox": True,
        "enableClickSelection": False,
    }
    table.dashGridOptions["selectionColumnDef"] = {"pinned": "left"}  # beside the key, which is pinned


def _bulk_bar(context: PageContext) -> html.Div:
    """Above the grid: how many rows are selected and what can be done to all of them at once."""
    return html.Div(
        [
            dcc.Store(id="queue-bulk-refused", data=cannot_act(context.client)),
            html.Div(_bulk_buttons([], None), id="queue-bulk-actions", className="tl-bulk-actions"),
        ],
        id="queue-bulk-bar",
        className="tl-bulk-bar",
    )


def _bulk_buttons(keys: list[str], refused: str | None) -> list[Any]:
    """The bar's buttons, each carrying the selected keys in its request (actions.py opens the dialog)."""
    count = html.Span(
        f"{len(keys)} selected" if keys else "Select rows to resolve or acknowledge them together",
        id="queue-selected",
        className="tl-muted me-2",
    )
    why = refused or (None if keys else "Select transactions first")
    return [
        count,
        button(ActionRequest("resolve_selected", keys=keys), refused=why, class_name="me-2"),
        button(ActionRequest("acknowledge_selected", keys=keys), refused=why),
    ]


def _note(text: str) -> html.Div:
    return html.Div([icon("info-circle", "me-1"), text], className="tl-footnote", id="queue-note")


def _counts(items: list[TransactionSummary], query: Query) -> html.Div:
    """One chip per issue with its count; a click filters the queue to it."""
    totals = dict.fromkeys(ISSUES, 0)
    for item in items:
        for issue in issues_of(item):
            totals[issue] += 1
    current = query.list("issue")
    chips = []
    for issue, label in ISSUES.items():
        active = current == [issue]
        target = query.with_(issue=None if active else issue)
        chips.append(
            dcc.Link(
                [html.Span(fmt.count(totals[issue]), className="tl-chip-count"), label],
                href=href(QUEUE, target),
                className=f"tl-chip tl-chip-{issue}" + (" active" if active else ""),
                id=f"queue-count-{issue}",
            )
        )
    return html.Div(chips, className="tl-chips")


def _columns(by_breach: bool = False) -> list[dict[str, Any]]:
    """``by_breach``: the soonest predicted breach first, else the longest waiting."""
    return [
        column("key", "Transaction", renderer="Link", width=170, pinned="left"),
        column("workflow", "Workflow", width=180),
        column("state", "State", renderer="StateBadge", width=140),
        column("issues", "Issues", renderer="Tags", flex=1.2, sortable=False, minWidth=200),
        column(
            "waiting_on",
            "Waiting on",
            renderer="StepAt",
            flex=1.6,
            minWidth=340,
            tooltipField="waiting_title",
        ),
        column(
            "waiting_seconds",
            "Waiting for",
            numeric=True,
            width=130,
            sort=None if by_breach else "desc",
            valueFormatter={"function": "params.data.waiting_text"},
            cellClassRules={"tl-cell-overdue": "params.data.overdue"},
        ),
        column(
            "forecast_seconds",
            "Forecast",
            numeric=True,
            width=170,
            sort="asc" if by_breach else None,
            valueFormatter={"function": "params.data.forecast_text"},
            tooltipField="forecast_reason",
            cellClassRules={"tl-cell-overdue": "params.data.will_breach"},
        ),
        column(
            "last_activity",
            "Last activity",
            width=150,
            valueFormatter={"function": "params.data.last_activity_text"},
            tooltipField="last_activity_title",
        ),
        column(
            "amount",
            "Value",
            numeric=True,
            width=120,
            valueFormatter={"function": "params.data.amount_text"},
        ),
    ]


def _row(item: TransactionSummary, now: dt.datetime, context: PageContext) -> dict[str, Any]:
    waited = waiting_seconds(item, now)
    forecast = item.get("forecast")
    sla = item["sla"]
    issues = []
    if sla["breached"]:
        issues.append({"text": f"SLA +{fmt.duration(sla['breached_by_seconds'])}", "tone": "breached"})
    if item["violations"]:
        count = len(item["violations"])
        issues.append({"text": f"{count} violation{'s' if count > 1 else ''}", "tone": "violation"})
    for mismatch in item.get("mismatches", []):
        issues.append({"text": f"{mismatch['field']} {mismatch['kind']}", "tone": "violation"})
    if item.get("duplicates"):
        issues.append({"text": "possible duplicate", "tone": "violation"})
    if item["error_count"]:
        count = item["error_count"]
        issues.append({"text": f"{count} error{'s' if count > 1 else ''}", "tone": "neutral"})
    if item["state"] == "failed":
        waiting_on = []  # a failed transaction waits on nothing
    else:
        waiting_on = [
            {"step": w["step"], "system": w["system"] or "", "overdue": w["overdue"]}
            for w in item["waiting_on"]
        ]
    return {
        "key": item["correlation_id"],
        "href": href(transaction_path(item["correlation_id"])),
        "workflow": item["workflow"],
        "state": item["state"],
        "issues": issues,
        "waiting_on": waiting_on,
        "waiting_title": "; ".join(f"{w['step']} @ {w['system']}" for w in waiting_on),
        "waiting_seconds": waited,
        "waiting_text": fmt.duration(waited) if waited is not None else "—",
        "overdue": any(w["overdue"] for w in item["waiting_on"]),
        "height": 44 + 20 * max(len(waiting_on) - 1, 0),
        "last_activity": item["last_activity"],
        "last_activity_text": fmt.ago(item["last_activity"], now),
        "last_activity_title": fmt.full_time(item["last_activity"], context.tz),
        "forecast_seconds": forecast["lead_seconds"] if forecast else None,
        "forecast_text": forecast_text(item, now),
        "forecast_reason": forecast["reason"] if forecast else "",
        "will_breach": will_breach(item),
        "amount": item["amount"],
        "amount_text": fmt.money(item["amount"], item["currency"]) if item["amount"] is not None else "—",
    }


def register(app: dash.Dash) -> None:
    """Filters write themselves into the URL; a click on a row opens its transaction."""

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("queue-workflow", "value"),
        Input("queue-system", "value"),
        Input("queue-state", "value"),
        Input("queue-issue", "value"),
        Input("queue-age", "value"),
        Input("queue-dimension", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def filter_queue(
        workflow: str | None,
        system: str | None,
        states: list[str] | None,
        issues: list[str] | None,
        age: str | None,
        dimensions: list[str] | None,
        search: str | None,
    ) -> str | NoUpdate:
        query = Query.parse(search)
        changes = {
            "state": list(states or []),
            "issue": list(issues or []),
            "dimension": list(dimensions or []),
        }
        new = search_of(query.with_(workflow=workflow, system=system, age=age, **changes))
        return dash.no_update if new == (search or "") else new

    @app.callback(
        Output("url", "href", allow_duplicate=True),
        Input("queue-grid", "cellClicked"),
        prevent_initial_call=True,
    )
    def open_transaction(cell: dict[str, Any] | None) -> str | NoUpdate:
        if not cell or not cell.get("rowId") or cell.get("colId") in ("key", SELECTION_COLUMN):
            return dash.no_update  # the key is a link of its own (it opens in a new tab too)
        return href(transaction_path(str(cell["rowId"])))

    @app.callback(
        Output("queue-bulk-actions", "children"),
        Input("queue-grid", "selectedRows"),
        State("queue-bulk-refused", "data"),
        prevent_initial_call=True,
    )
    def selected(rows: list[dict[str, Any]] | None, refused: str | None) -> list[Any]:
        return _bulk_buttons([str(row["key"]) for row in rows or []], refused)
