"""One alert, opened on the Alerts page (``/alerts?alert=<id>``, the link every notification carries).

It answers what the person who got paged asks: what fired and why (the rule in words, the figures it
fired with), which transactions are behind it (each a link), whether it is still firing, and who was
told: every delivery attempt to every receiver, with the receiver's answer. The payload the
receivers were sent is there too, for whoever wires a receiver up.
"""

from __future__ import annotations

import json
from typing import Any

from dash import dcc, html

from . import formatting as fmt
from .alerting import SEVERITIES, SEVERITY_ICONS, describe_rule, duration_seconds, figure_facts
from .client import NotFound
from .components import Child, card, empty_state, icon
from .grids import column, grid
from .page import PageContext
from .schema import AlertDetail
from .urls import ALERTS, href, transaction_path


def severity_badge(severity: str, id: str | None = None) -> html.Span:
    """Critical red, warning amber, info blue: the same colours as the table's."""
    props: dict[str, Any] = {"id": id} if id else {}
    return html.Span(
        [icon(SEVERITY_ICONS.get(severity, "bell")), SEVERITIES.get(severity, severity.capitalize())],
        className=f"tl-badge tl-severity tl-severity-{severity}",
        **props,
    )


def status_badge(status: str, id: str | None = None) -> html.Span:
    props: dict[str, Any] = {"id": id} if id else {}
    if status == "firing":
        return html.Span(
            [html.Span(className="tl-dot tl-pulse"), "Firing"], className="tl-badge tl-alert-firing", **props
        )
    return html.Span([icon("check2"), "Resolved"], className="tl-badge tl-state-completed", **props)


def panel(context: PageContext, alert_id: str) -> Any:
    """The detail card of ``alert_id``, or a card saying no alert has that id."""
    close = dcc.Link(
        [icon("x-lg"), " Close"],
        href=href(ALERTS, context.query.with_(alert=None)),
        className="tl-link-action",
        id="alert-detail-close",
    )
    try:
        alert = context.client.alert(alert_id)
    except NotFound:
        unknown = empty_state(
            "No alert has this id",
            ["The link names ", html.Code(alert_id), "; it may belong to another tenant or store."],
            "bell-slash",
        )
        return card("Alert", unknown, close, id="alert-detail")
    title = [severity_badge(alert["severity"]), html.Span(alert["rule"], className="tl-mono tl-alert-rule")]
    body = [
        _facts(alert, context),
        _resolution(alert),
        _figures(alert),
        _section("Transactions when it fired", _transactions(alert, context), "alert-transactions-section"),
        _section("Deliveries", _deliveries(alert, context), "alert-deliveries-section"),
        html.Details(
            [
                html.Summary("Payload sent to the receivers (JSON)", className="tl-payload-summary"),
                html.Pre(json.dumps(alert["context"], indent=2), className="tl-code tl-payload"),
            ],
            className="tl-payload-details",
        )
        if alert["context"]
        else None,
    ]
    return card(
        title,
        body,
        close,
        html.Span(alert["summary"], id="alert-detail-summary"),
        id="alert-detail",
        class_name="tl-alert-card",
    )


def _fact(label: str, value: Child, detail: Child = None, id: str | None = None) -> html.Div:
    props: dict[str, Any] = {"id": id} if id else {}
    return html.Div(
        [
            html.Div(label, className="tl-eyebrow"),
            html.Div(value, className="tl-fact-value", **props),
            html.Div(detail, className="tl-fact-detail") if detail else None,
        ],
        className="tl-fact",
    )


def _facts(alert: AlertDetail, context: PageContext) -> html.Div:
    now = context.now
    lasted = fmt.duration(duration_seconds(alert, now))
    parameters = (alert["context"].get("alert") or {}).get("parameters") or {}
    subject = alert["subject"] or "the rule's scope"
    scope = alert["workflow"] or "every workflow"
    count = alert["context"].get("transactions_total") or len(alert["transactions"])
    return html.Div(
        [
            _fact(
                "Status",
                status_badge(alert["status"], id="alert-detail-status"),
                f"for {lasted}" if alert["status"] == "firing" else f"fired for {lasted}",
            ),
            _fact("Fired", fmt.clock(alert["fired_at"], context.tz, now), fmt.ago(alert["fired_at"], now)),
            _fact(
                "Resolved",
                fmt.clock(alert["resolved_at"], context.tz, now) if alert["resolved_at"] else "Still firing",
                fmt.ago(alert["resolved_at"], now) if alert["resolved_at"] else None,
            ),
            _fact("Condition", describe_rule(alert["condition"], parameters), f"in {scope}"),
            _fact("Subject", subject, f"{fmt.plural(count, 'transaction')} behind it"),
        ],
        className="tl-facts tl-alert-facts",
    )


def _resolution(alert: AlertDetail) -> Any:
    if not alert["resolution"]:
        return None
    return html.Div(
        [
            icon("check-circle-fill", "tl-callout-icon"),
            html.Div([html.Strong("Resolved: "), alert["resolution"]]),
        ],
        className="tl-callout tl-callout-completed",
        id="alert-detail-resolution",
    )


def _figures(alert: AlertDetail) -> Any:
    facts = figure_facts(alert["context"].get("figures") or {})
    if not facts:
        return None
    return html.Div(
        [
            html.Span([html.Span(label, className="tl-figure-label"), value], className="tl-figure")
            for label, value in facts
        ],
        className="tl-figures",
        id="alert-detail-figures",
    )


def _section(title: str, body: Child, id: str) -> html.Section:
    return html.Section([html.H3(title, className="tl-section-title"), body], className="tl-section", id=id)


def _transactions(alert: AlertDetail, context: PageContext) -> Any:
    """The transactions as the payload described them when the alert fired, each a link to its page."""
    described = alert["context"].get("transactions") or []
    rows = []
    for item in described:
        sla = item.get("sla") or {}
        waiting = [
            {"step": w["step"], "system": w.get("system") or "", "overdue": w.get("overdue", False)}
            for w in item.get("waiting_on") or []
        ]
        rows.append(
            {
                "key": item["correlation_id"],
                "href": href(transaction_path(item["correlation_id"])),
                "workflow": item.get("workflow", ""),
                "state": item.get("state", ""),
                "waiting_on": waiting,
                "sla": f"+{fmt.duration(sla['breached_by_seconds'])}" if sla.get("breached") else "within",
                "breached": bool(sla.get("breached")),
                "amount_text": fmt.money(item.get("amount"), item.get("currency"))
                if item.get("amount") is not None
                else "—",
                "height": 44 + 20 * max(len(waiting) - 1, 0),
            }
        )
    if not rows:  # an alert stored without its payload: the keys alone
        rows = [
            {"key": key, "href": href(transaction_path(key)), "height": 44} for key in alert["transactions"]
        ]
    if not rows:
        return html.Div("No transaction is behind it.", className="tl-muted")
    columns = [
        column("key", "Transaction", renderer="Link", width=150),
        column("workflow", "Workflow", width=170),
        column("state", "State then", renderer="StateBadge", width=130),
        column("waiting_on", "Waiting on", renderer="StepAt", flex=1.5, minWidth=300, sortable=False),
        column("sla", "SLA", width=120, cellClassRules={"tl-cell-breached": "params.data.breached"}),
        column("amount_text", "Value", numeric=True, width=120),
    ]
    table = grid("alert-transactions", columns, rows, row_id="key")
    table.dashGridOptions["getRowHeight"] = {"function": "params.data.height"}
    table.className += " tl-grid-middle"
    total = alert["context"].get("transactions_total") or len(rows)
    note = (
        html.Div(
            [
                icon("info-circle", "me-1"),
                f"The first {len(rows)} of {total:,}; the payload lists at most that many.",
            ],
            className="tl-footnote mt-2",
        )
        if total > len(rows)
        else None
    )
    return html.Div([html.Div(table, className="tl-inset-grid"), note])


def _deliveries(alert: AlertDetail, context: PageContext) -> Any:
    """Every attempt to every receiver, with what the receiver answered; skipped ones say why."""
    rows: list[dict[str, Any]] = []
    for notification in sorted(alert["notifications"], key=lambda n: (n["receiver"], n["created_at"])):
        base = {
            "receiver": notification["receiver"],
            "receiver_type": notification["receiver_type"],
            "event": notification["event"],
            "final": notification["status"],
        }
        if not notification["history"]:
            when = notification["next_attempt_at"] or notification["created_at"]
            rows.append(
                {
                    **base,
                    "id": notification["id"],
                    "attempt": None,
                    "at_text": fmt.clock(when, context.tz, context.now),
                    "result": notification["status"],
                    "http": "",
                    "error": notification["last_error"],
                    "took": "—",
                }
            )
        for attempt in notification["history"]:
            rows.append(
                {
                    **base,
                    "id": f"{notification['id']}-{attempt['attempt']}",
                    "attempt": attempt["attempt"],
                    "at_text": fmt.clock(attempt["at"], context.tz, context.now),
                    "result": "delivered" if attempt["ok"] else "failed",
                    "http": str(attempt["status_code"] or "—"),
                    "error": attempt["error"],
                    "took": fmt.milliseconds(attempt["duration_ms"]),
                }
            )
    if not rows:
        return html.Div("No receiver was told: the rule names none.", className="tl-muted")
    columns = [
        column("receiver", "Receiver", width=150, cellClass="tl-strong"),
        column("receiver_type", "Type", width=100),
        column("event", "Notice", width=100),
        column("attempt", "Attempt", numeric=True, width=100),
        column("at_text", "At", width=120),
        column("result", "Result", renderer="Delivery", width=130),
        column("http", "HTTP", numeric=True, width=84),
        column("error", "Error", flex=1, minWidth=200, tooltipField="error", cellClass="tl-text-failed"),
        column("took", "Took", numeric=True, width=90),
    ]
    return html.Div(grid("alert-deliveries", columns, rows, row_id="id"), className="tl-inset-grid")
