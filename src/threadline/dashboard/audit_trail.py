"""A transaction's resolution and audit trail, on its page.

Operators mark a transaction resolved when it was handled outside the integrations (an order booked
by hand in the ERP): it then leaves the queue, the stuck count and value at risk, and its alerts
resolve, though its state stays what its events say. So the page shows a "Resolved" badge and who
resolved it and why, offers "Mark resolved" or "Reopen" (actions.py asks for the comment), and lists
every operator's action on it (``/api/audit?transaction=<key>``), newest first. Beside it, a
"Request retry" button per action the workflows file declares for its failed or stuck steps; the
integration's answer shows in the trail.
"""

from __future__ import annotations

from typing import Any

from dash import html

from . import formatting as fmt
from .actions import Action, ActionRequest, button, cannot_act, disabled_note, outcome_text
from .client import NotFound
from .components import Child, card, icon
from .page import PageContext
from .schema import AuditEntry, TransactionDetail

VERBS = {
    "resolve": "Resolved",
    "reopen": "Reopened",
    "acknowledge": "Acknowledged",
    "retry": "Retry requested",
}
ICONS = {
    "resolve": "check2-circle",
    "reopen": "arrow-counterclockwise",
    "acknowledge": "eye",
    "retry": "arrow-repeat",
}


def entries(context: PageContext, key: str) -> list[AuditEntry] | None:
    """The operators' actions on the transaction, newest first; None from a collector without an audit log."""
    try:
        return context.client.audit(transaction=key, limit=100)["items"]
    except NotFound:
        return None


def is_resolved(detail: TransactionDetail) -> bool:
    return bool(detail.get("resolved", False))


def badge(detail: TransactionDetail) -> Any:
    """The "Resolved" badge beside the state, when an operator resolved it."""
    if not is_resolved(detail):
        return None
    return html.Span(
        [icon("check2-circle"), "Resolved"],
        className="tl-badge tl-resolved",
        id="transaction-resolved",
        title="Marked resolved by an operator: left out of the queue, stuck counts and value at risk",
    )


def action(detail: TransactionDetail, context: PageContext) -> list[Any]:
    """ "Mark resolved", or "Reopen" once it is, and "Request retry" for each declared action of its
    failed or stuck steps; disabled, saying why, when the dashboard may not act (or the action is
    not configured)."""
    verb: Action = "reopen" if is_resolved(detail) else "resolve"
    refused = cannot_act(context.client)
    request = ActionRequest(verb, key=detail["correlation_id"])
    drawn = [button(request, class_name="tl-resolve-action", refused=refused)]
    for offered in detail.get("actions", []):
        retry = ActionRequest(
            "retry",
            key=detail["correlation_id"],
            name=offered["name"],
            step=offered["step"],
            system=offered["system"] or "",
        )
        label = f"Request retry: {offered['name']}"
        drawn.append(button(retry, label, "tl-retry-action ms-2", refused or offered["reason"]))
    return [*drawn, disabled_note(refused)] if refused else drawn


def callout(detail: TransactionDetail, trail: list[AuditEntry], context: PageContext) -> Any:
    """Who resolved it, when and why, at the top of the page's callouts."""
    if not is_resolved(detail):
        return None
    latest = next((entry for entry in trail if entry["action"] == "resolve"), None)
    body: list[Any] = [html.Strong("Resolved by an operator ")]
    if latest:
        body += [
            f"— {_who(latest)}, {fmt.ago(latest['at'], context.now)}: ",
            html.Span(f"“{latest['comment']}”", className="tl-ack-comment-inline"),
        ]
    body.append(
        html.Div(
            "It is left out of the queue, the stuck count and value at risk until someone reopens it; "
            "its state is still what its events say.",
            className="tl-alert-detail",
        )
    )
    return html.Div(
        [icon("check-circle-fill", "tl-callout-icon"), html.Div(body)],
        className="tl-callout tl-callout-completed",
        id="callout-resolved",
    )


def _who(entry: AuditEntry) -> str:
    return f"{entry['operator']} (via {entry['actor']})" if entry["operator"] else entry["actor"]


def trail_card(trail: list[AuditEntry], context: PageContext) -> Any:
    """Every operator action on the transaction, newest first, each with who, when and why."""
    if trail:
        body: Any = html.Ol([_entry(entry, context) for entry in trail], className="tl-audit")
    else:
        body = html.Div(
            [icon("journal", "me-2"), "No operator has acted on this transaction yet."],
            className="tl-muted",
            id="audit-empty",
        )
    count = fmt.plural(len(trail), "action")
    return card(
        "Audit trail",
        body,
        subtitle=f"What operators did about this transaction, newest first · {count}",
        id="audit-trail",
    )


def _entry(entry: AuditEntry, context: PageContext) -> html.Li:
    """One action: what, by whom (the person, and the API key they acted through), when, and why."""
    who: list[Child] = [
        html.Strong(VERBS.get(entry["action"], entry["action"])),
        " by ",
        html.Strong(entry["operator"] or entry["actor"], className="tl-audit-who"),
        html.Span(f" via {entry['actor']}", className="tl-muted") if entry["operator"] else None,
    ]
    when = html.Span(
        f"{fmt.clock(entry['at'], context.tz, context.now)} · {fmt.ago(entry['at'], context.now)}",
        className="tl-step-when",
        title=fmt.full_time(entry["at"], context.tz),
    )
    return html.Li(
        [
            html.Span(
                icon(ICONS.get(entry["action"], "dot")), className=f"tl-audit-icon tl-audit-{entry['action']}"
            ),
            html.Div(
                [
                    html.Div([html.Span(who), when], className="tl-audit-line"),
                    html.Div(entry["comment"], className="tl-audit-comment"),
                    _outcome(entry),
                ],
                className="tl-audit-body",
            ),
        ],
        className="tl-audit-entry",
    )


def _outcome(entry: AuditEntry) -> Any:
    """A retry request's answer from the integration, under its comment."""
    outcome = entry.get("outcome")
    if not outcome:
        return None
    body = f" — {outcome['body']}" if outcome["body"] else ""
    return html.Div(
        [
            icon("check2" if outcome["delivered"] else "x-octagon", "me-1"),
            f"{entry.get('request')} ({entry.get('step')}): {outcome_text(entry)}{body}",
        ],
        className="tl-audit-outcome " + ("tl-text-completed" if outcome["delivered"] else "tl-text-failed"),
    )
