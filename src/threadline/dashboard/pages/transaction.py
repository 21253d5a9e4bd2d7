"""Transaction detail (``/transactions/<key>``): one business transaction, by any of its keys.

The header answers "where is it and is it late" (state, SLA clock, aliases); the swimlane timeline
shows every event per system with retries and errors; expected-but-missing steps and governance
violations are called out; a click on an event opens its technical trace as a span waterfall
(``?trace=<id>`` in the URL, so the selection can be shared too). Operators mark it resolved or
reopen it from the header, and its audit trail lists what they did (audit_trail.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Input, NoUpdate, Output, State, dcc, html

from .. import audit_trail, timeline, waterfall
from .. import formatting as fmt
from ..client import NotFound
from ..components import card, empty_state, icon, page_header, state_badge, system_chip, tag
from ..grids import column, grid
from ..page import PageContext, Rendered
from ..schema import AuditEntry, Step, TransactionDetail
from ..urls import QUEUE, TRANSACTIONS, Query, href, search_of, tail, transaction_path, workflow_path

STEP_ICONS = {
    "done": "check-circle-fill",
    "failed": "x-circle-fill",
    "in_progress": "arrow-repeat",
    "waiting": "hourglass-split",
    "missing": "exclamation-diamond-fill",
    "not_started": "circle",
}


def render(context: PageContext) -> Rendered:
    """The transaction the path names (any key), and the trace in ``?trace=``."""
    key = tail(context.pathname, TRANSACTIONS)
    if not key:
        return Rendered("Transactions", _unknown(""))
    try:
        detail = context.client.transaction(key)
    except NotFound:
        return Rendered("Not found", _unknown(key))
    trace_id = context.query.get("trace")
    fail_on = next((w["fail_on"] for w in context.client.workflows() if w["name"] == detail["workflow"]), [])
    trail = audit_trail.entries(context, detail["correlation_id"])
    return Rendered(
        detail["correlation_id"],
        [
            _header(detail, key, context, trail is not None),
            _callouts(detail, context, fail_on, trail or []),
            card(
                "Timeline",
                dcc.Graph(
                    id="transaction-timeline",
                    figure=timeline.figure(detail, context.theme, context.tz),
                    config={"displayModeBar": False, "responsive": True},
                    className="tl-graph",
                ),
                subtitle="Every event, one lane per system; retries and errors included. "
                "Click an event to see its trace.",
                flush=True,
            ),
            html.Div(
                [
                    card(
                        "Steps",
                        _steps(detail["steps"], context),
                        subtitle="Expected by the workflow, and what happened",
                        class_name="tl-span-4",
                    ),
                    card(
                        "Events",
                        _events(detail, context, trace_id),
                        subtitle=f"{len(detail['events'])} events in event-time order",
                        class_name="tl-span-8",
                        flush=True,
                    ),
                ],
                className="tl-grid-row",
            ),
            html.Div(_trace(context, trace_id) if trace_id else None, id="trace-panel"),
            audit_trail.trail_card(trail, context) if trail is not None else None,
        ],
    )


def _unknown(key: str) -> Any:
    body = [
        "Keys are correlation ids (an opportunity id, an order number) or any alias of one "
        "(an ERP sales order, an invoice id). Check the spelling, or find it in the ",
        dcc.Link("operations queue", href=href(QUEUE)),
        ".",
    ]
    title = f"No transaction has the key “{key}”" if key else "Search for a transaction"
    return card(body=html.Div(empty_state(title, body, "search"), id="not-found"))


def _header(detail: TransactionDetail, key: str, context: PageContext, actions: bool) -> html.Div:
    """Key, state (and "Resolved"), aliases, the resolve/reopen action, the facts and the SLA clock."""
    aliases = detail["aliases"]
    found_by = next((kind for kind, alias in aliases.items() if alias == key), None)
    kicker = [
        dcc.Link(
            detail["workflow"], href=href(workflow_path(detail["workflow"])), className="tl-kicker-link"
        ),
        html.Span(" · transaction"),
    ]
    chips = [
        tag([html.Span(kind, className="tl-alias-kind"), alias], "alias", class_name="tl-alias")
        for kind, alias in aliases.items()
    ]
    subtitle = [
        state_badge(detail["state"], id="transaction-state"),
        audit_trail.badge(detail),
        html.Span(chips or "no aliases", className="tl-aliases", id="transaction-aliases"),
    ]
    if detail.get("dimensions"):  # each opens the queue of the transactions that share it
        subtitle.append(
            html.Span(
                [
                    dcc.Link(
                        tag(
                            [html.Span(key, className="tl-alias-kind"), value],
                            "dimension",
                            class_name="tl-alias",
                        ),
                        href=href(QUEUE, {"dimension": f"{key}:{value}"}),
                        title=f"The queue's transactions with {key} {value}",
                    )
                    for key, value in detail["dimensions"].items()
                ],
                className="tl-aliases",
                id="transaction-dimensions",
            )
        )
    if found_by:
        subtitle.append(
            html.Span(
                [icon("link-45deg"), f" found by its {found_by} “{key}”"], className="tl-muted", id="found-by"
            )
        )
    if actions:
        subtitle.extend(audit_trail.action(detail, context))
    now = fmt.parse_time(detail["as_of"]) or context.now
    amount = fmt.money(detail["amount"], detail["currency"]) if detail["amount"] is not None else "—"
    facts = html.Div(
        [
            _fact("Started", fmt.clock(detail["started_at"], context.tz), fmt.ago(detail["started_at"], now)),
            _fact(
                "Last activity",
                fmt.clock(detail["last_activity"], context.tz),
                fmt.ago(detail["last_activity"], now),
            ),
            _fact("Value", amount, None),
            _fact(
                "Events",
                fmt.count(detail["event_count"]),
                f"{detail['error_count']} errors · {detail['retry_count']} retries",
            ),
            _fact("Systems", str(len(detail["systems"])), ", ".join(detail["systems"])),
        ],
        className="tl-facts",
    )
    header = page_header(detail["correlation_id"], subtitle, _sla_clock(detail), kicker)
    return html.Div([header, facts], className="tl-transaction-head")


def _fact(label: str, value: str, detail: str | None) -> html.Div:
    return html.Div(
        [
            html.Div(label, className="tl-eyebrow"),
            html.Div(value, className="tl-fact-value"),
            html.Div(detail, className="tl-fact-detail") if detail else None,
        ],
        className="tl-fact",
    )


def _sla_clock(detail: TransactionDetail) -> html.Div:
    """The SLA as a clock: how much of it is used, and how much is left (or by how much it is late)."""
    sla = detail["sla"]
    limit, elapsed = sla["limit_seconds"], sla["elapsed_seconds"]
    if not limit:
        return html.Div(
            [
                html.Div("SLA", className="tl-eyebrow"),
                html.Div("No SLA for this workflow", className="tl-muted"),
            ],
            className="tl-sla",
            id="sla-clock",
        )
    used = min(elapsed / limit, 1.0)
    finished = detail["state"] in ("completed", "failed")
    if sla["breached"]:
        headline, tone = f"Breached by {fmt.duration(sla['breached_by_seconds'])}", "breached"
    elif finished:
        headline, tone = f"Within SLA ({fmt.duration(limit - elapsed)} to spare)", "completed"
    else:
        headline = f"{fmt.duration(limit - elapsed)} left"
        tone = "stuck" if used > 0.75 else "in_progress"
    return html.Div(
        [
            html.Div(
                [html.Span("SLA clock", className="tl-eyebrow"), html.Span(f"{fmt.duration(limit)} limit")],
                className="tl-sla-top",
            ),
            html.Div(headline, className=f"tl-sla-headline tl-text-{tone}"),
            html.Div(
                html.Div(className=f"tl-sla-fill tl-fill-{tone}", style={"width": f"{used * 100:.1f}%"}),
                className="tl-sla-track",
            ),
            html.Div(
                f"{fmt.duration(elapsed)} elapsed" + (" · stopped" if finished else " · running"),
                className="tl-fact-detail",
            ),
            _eta(detail),
        ],
        className=f"tl-sla tl-sla-{tone}",
        id="sla-clock",
    )


def _eta(detail: TransactionDetail) -> html.Div | None:
    """The forecast beside the SLA clock: expected completion, and why (open transactions only)."""
    forecast = detail.get("forecast")
    if not forecast or detail["state"] in ("completed", "failed"):
        return None
    if forecast["completion_expected"] is False:
        text = "No ETA: not expected to complete without intervention"
        if forecast["breach_expected"]:
            text += " · will breach its SLA"
    elif forecast["eta"] is None:
        text = "No ETA: too little history"
    elif forecast["breach_expected"]:
        text = f"ETA {fmt.clock(forecast['eta'], dt.UTC)} UTC · will breach its SLA"
    else:
        text = f"ETA {fmt.clock(forecast['eta'], dt.UTC)} UTC · within SLA"
    return html.Div(text, className="tl-fact-detail", id="sla-eta", title=forecast["reason"])


def _callouts(
    detail: TransactionDetail, context: PageContext, fail_on: list[str], trail: list[AuditEntry]
) -> html.Div:
    now = fmt.parse_time(detail["as_of"]) or context.now
    alerts = [audit_trail.callout(detail, trail, context)]
    if detail["state"] == "failed":
        failing = next((s for s in detail["steps"] if s["name"] in fail_on and s["first_at"]), None)
        error = next((e["error"] for e in reversed(detail["events"]) if e["error"]), None)
        alerts.append(
            _alert(
                "failed",
                "x-octagon-fill",
                "Failed",
                [
                    f"at {failing['name']} " if failing else "",
                    f"({fmt.ago(detail['failed_at'], now)})" if detail["failed_at"] else "",
                    " after it had completed" if detail["completed_at"] else "",
                    html.Div(f"{error['kind']}: {error['message']}", className="tl-alert-detail")
                    if error
                    else None,
                ],
                "callout-failed",
            )
        )
    for waiting in detail["waiting_on"]:
        due = fmt.parse_time(waiting["due_since"])
        waited = fmt.duration((now - due).total_seconds()) if due else "—"
        allowed = (
            f"; it may take {fmt.duration(waiting['within_seconds'])}" if waiting["within_seconds"] else ""
        )
        tone = "stuck" if detail["state"] == "stuck" or waiting["overdue"] else "in_progress"
        title = "Stuck waiting on" if detail["state"] == "stuck" else "Waiting on"
        alerts.append(
            _alert(
                tone,
                "hourglass-split",
                title,
                [
                    html.Span(waiting["step"], className="tl-mono"),
                    " in ",
                    html.Strong(waiting["system"] or "an unknown system"),
                    f" for {waited}",
                    html.Span(" — overdue" if waiting["overdue"] else "", className="fw-semibold"),
                    allowed,
                ],
                "callout-waiting",
            )
        )
    alerts.append(_undefined(detail))
    if detail["missing_steps"]:
        alerts.append(
            _alert(
                "violation",
                "exclamation-diamond-fill",
                "Expected but missing",
                [
                    "later steps ran without ",
                    *_joined([html.Span(step, className="tl-mono") for step in detail["missing_steps"]]),
                ],
                "callout-missing",
            )
        )
    for conflict in detail.get("alias_conflicts", []):
        alerts.append(
            _alert(
                "violation",
                "sign-merge-left",
                "Alias not linked",
                [
                    conflict["message"],
                    " Other transaction: ",
                    dcc.Link(
                        conflict["other_transaction"],
                        href=href(transaction_path(conflict["other_transaction"])),
                        className="tl-mono",
                    ),
                ],
                "callout-alias-conflict",
            )
        )
    for violation in detail["violations"]:
        if violation["rule"] == "after_failure":
            said = [" ran after the workflow failed at ", html.Span(violation["after"], className="tl-mono")]
        else:
            before = html.Span(violation["before"], className="tl-mono")
            said = [" ran before ", before, ", which it must come after"]
        alerts.append(
            _alert(
                "failed",
                "shield-exclamation",
                "Governance violation",
                [html.Span(violation["step"], className="tl-mono"), *said],
                "callout-violation",
            )
        )
    alerts.extend(_reconciliation(detail))
    return html.Div(alerts, className="tl-callouts")


def _reconciliation(detail: TransactionDetail) -> list[html.Div]:
    """Values its systems disagree on, and the transactions that may be the same business object."""
    found = []
    for mismatch in detail.get("mismatches", []):
        field = html.Span(mismatch["field"], className="tl-mono")
        if mismatch["kind"] == "missing":
            steps = [f"{step['step']} ({step['system']})" for step in mismatch["steps"]]
            body = [*_joined([html.Span(step, className="tl-mono") for step in steps]), " sent no ", field]
            title = "Value missing"
        else:
            values = [
                f"{step['step']} ({step['system']}): "
                + (
                    fmt.money(float(step["value"]), step.get("currency"))
                    if isinstance(step["value"], int | float)
                    else str(step["value"])
                )
                for step in mismatch["steps"]
            ]
            body = [field, f" differs beyond {mismatch['tolerance']}: ", *_joined(values)]
            title = "Systems disagree"
        found.append(_alert("failed", "intersect", title, body, "callout-mismatch"))
    duplicates = detail.get("duplicates", [])
    if duplicates:
        links = [
            dcc.Link(
                d["correlation_id"], href=href(transaction_path(d["correlation_id"])), className="tl-mono"
            )
            for d in duplicates
        ]
        body = [f"Same {duplicates[0]['field']} as ", *_joined(links)]
        found.append(_alert("violation", "files", "Possible duplicate", body, "callout-duplicate"))
    return found


def _undefined(detail: TransactionDetail) -> html.Div | None:
    """What the workflow definitions do not name: the workflow itself, or some of its steps."""
    workflow = html.Span(detail["workflow"], className="tl-mono")
    if not detail.get("workflow_defined", True):
        body = [
            workflow,
            " is not in the workflow definitions: its events are stored and shown, but its "
            "state, SLA and waiting steps cannot be judged.",
        ]
        return _alert("violation", "question-diamond-fill", "Workflow not defined", body, "callout-undefined")
    steps = [html.Span(step["name"], className="tl-mono") for step in detail["steps"] if not step["expected"]]
    if not steps:
        return None
    body = [
        *_joined(steps),
        " — not in the definition of ",
        workflow,
        ": stored and shown, but no rule applies.",
    ]
    return _alert("violation", "question-diamond", "Step not in the definition", body, "callout-undefined")


def _joined(parts: list[Any]) -> list[Any]:
    result: list[Any] = []
    for index, part in enumerate(parts):
        if index:
            result.append(", ")
        result.append(part)
    return result


def _alert(tone: str, icon_name: str, title: str, body: list[Any], id: str) -> html.Div:
    return html.Div(
        [icon(icon_name, "tl-callout-icon"), html.Div([html.Strong(title + " "), *body])],
        className=f"tl-callout tl-callout-{tone}",
        id=id,
    )


def _steps(steps: list[Step], context: PageContext) -> html.Ol:
    """The checklist of steps (a failure step only once it happened: the API leaves it out before)."""
    items = []
    for step in steps:
        when = fmt.clock(step["last_at"], context.tz) if step["last_at"] else ""
        notes = []
        if step["attempts"] > 1:
            notes.append(f"{step['attempts']} attempts")
        if step["duration_ms"] is not None:
            notes.append(fmt.milliseconds(step["duration_ms"]))
        if not step["expected"]:
            notes.append("not in the workflow")
        if step["expected_system"] and step["system"] != step["expected_system"]:
            notes.append(f"expected in {step['expected_system']}")
        items.append(
            html.Li(
                [
                    html.Span(
                        icon(STEP_ICONS[step["state"]]), className=f"tl-step-icon tl-text-{step['state']}"
                    ),
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.Span(step["name"], className="tl-mono tl-step-name"),
                                    html.Span(when, className="tl-step-when"),
                                ],
                                className="tl-step-line",
                            ),
                            html.Div(
                                [
                                    system_chip(step["system"]),
                                    html.Span(
                                        fmt.state_label(step["state"]), className=f"tl-text-{step['state']}"
                                    ),
                                    *[html.Span(note) for note in notes],
                                ],
                                className="tl-step-meta",
                            ),
                            html.Div(
                                f"{step['error']['kind']}: {step['error']['message']}",
                                className="tl-step-error",
                            )
                            if step["error"] and step["state"] != "done"
                            else None,
                        ],
                        className="tl-step-body",
                    ),
                ],
                className=f"tl-step tl-step-{step['state']}",
            )
        )
    return html.Ol(items, className="tl-steps", id="transaction-steps")


def _events(detail: TransactionDetail, context: PageContext, selected: str) -> Any:
    rows = []
    for event in detail["events"]:
        rows.append(
            {
                "id": event["event_id"],
                "time": fmt.clock(event["timestamp"], context.tz),
                "time_title": fmt.full_time(event["timestamp"], context.tz),
                "timestamp": event["timestamp"],
                "step": event["step"],
                "system": event["system"],
                "status": event["status"],
                "attempt": event["attempt"],
                "duration": event["duration_ms"],
                "duration_text": fmt.milliseconds(event["duration_ms"]),
                "error": f"{event['error']['kind']}: {event['error']['message']}" if event["error"] else "",
                "trace_id": event["trace_id"] or "",
                "selected": bool(selected) and event["trace_id"] == selected,
            }
        )
    columns = [
        column("timestamp", "Time", width=90, valueFormatter={"function": "params.data.time"}),
        column("step", "Step", flex=1.3, cellClass="tl-mono", minWidth=170, tooltipField="step"),
        column("system", "System", width=98),
        column("status", "Status", renderer="StateBadge", width=104),
        column("attempt", "Try", numeric=True, width=58),
        column(
            "duration",
            "Took",
            numeric=True,
            width=78,
            valueFormatter={"function": "params.data.duration_text"},
        ),
        column("error", "Error", flex=1, tooltipField="error", cellClass="tl-text-failed", minWidth=100),
        column("trace_id", "Trace", renderer="TraceLink", width=80, sortable=False),
    ]
    height = None if len(rows) <= 12 else 560  # short tables grow with their rows, long ones scroll
    table = grid("events-grid", columns, rows, row_id="id", height=height, clickable=True)
    table.dashGridOptions["rowClassRules"] = {"tl-row-selected": {"function": "params.data.selected"}}
    return table


def _trace(context: PageContext, trace_id: str) -> Any:
    close = dcc.Link(
        [icon("x-lg"), " Close"],
        href=search_of(context.query.with_(trace=None)) or href(context.pathname),
        className="tl-link-action",
        id="trace-close",
    )
    try:
        trace = context.client.trace(trace_id)
    except NotFound:
        unknown = empty_state(
            "No spans stored for this trace",
            "The event names a trace the collector has not received spans for (yet).",
            "diagram-3",
        )
        return card(["Trace ", html.Span(trace_id, className="tl-mono")], unknown, close, id="trace-card")
    if not trace["spans"]:
        body: Any = empty_state(
            "Only business events in this trace", "No technical span was exported.", "diagram-3"
        )
    else:
        body = dcc.Graph(
            id="trace-waterfall",
            figure=waterfall.figure(trace, context.theme, context.tz),
            config={"displayModeBar": False, "responsive": True},
            className="tl-graph",
        )
    linked = ", ".join(sorted({event["step"] for event in trace["events"]})) or "no business event"
    errors = sum(1 for span in trace["spans"] if span["status_code"] == "error")
    subtitle = (
        f"{len(trace['spans'])} spans" + (f", {errors} failed" if errors else "") + f" · linked to {linked}"
    )
    return card(
        ["Trace ", html.Span(trace_id, className="tl-mono tl-trace-id")],
        body,
        close,
        subtitle,
        id="trace-card",
        flush=True,
    )


def register(app: dash.Dash) -> None:
    """Clicking an event (on the timeline or in the table) puts its trace into the URL."""

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("transaction-timeline", "clickData"),
        Input("events-grid", "cellClicked"),
        State("events-grid", "rowData"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def select_trace(
        click: dict[str, Any] | None,
        cell: dict[str, Any] | None,
        rows: list[dict[str, Any]] | None,
        search: str | None,
    ) -> str | NoUpdate:
        trace_id = ""
        if dash.ctx.triggered_id == "transaction-timeline" and click:
            data = click.get("points", [{}])[0].get("customdata") or []
            trace_id = data[0] if data else ""
        elif dash.ctx.triggered_id == "events-grid" and cell:
            row = next((r for r in rows or [] if r["id"] == cell.get("rowId")), None)
            trace_id = row["trace_id"] if row else ""
        if not trace_id:
            return dash.no_update
        new = search_of(Query.parse(search).with_(trace=trace_id))
        return dash.no_update if new == (search or "") else new
