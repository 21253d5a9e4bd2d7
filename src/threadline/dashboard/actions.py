"""What operators do from the dashboard: acknowledge an exception group, resolve or reopen a
transaction, silence a notification group's alerts for a while or expire a silence.

Each action asks for a comment (the audit trail's "why"). With sign-in (signin.py) the audit trail
records the signed-in person (e-mail and subject from their ID token) beside the key of their role;
a viewer's actions are drawn disabled, and the callback that records one answers a viewer 403
(``signin.require_acting``), since anyone can call it directly. Without sign-in the dialog asks for
the person's name, which the browser remembers (local storage) so it is typed once: everyone shares
the dashboard's key, so the name is what says who acted. Either way the dashboard acts only with a
key that has the collector's ``act`` role, and otherwise draws its actions disabled and says why
(``cannot_act``); the callback checks again.

The dialog lives in the shell, outside the page, so an auto-refresh never wipes a half-typed
comment; pages only draw ``button``s, each carrying its request in its id. Once the API has
recorded an action, ``data-version`` changes and the router redraws the page from the API: the
result shows without a reload, and a toast says what was done. The API is the only record:
nothing here assumes an action happened until it answered 201.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html

from . import formatting as fmt
from . import signin
from .client import ApiError, ApiRejected, ApiUnavailable, QueryClient
from .components import Child, icon
from .schema import AuditEntry, BulkActionResult

Action = Literal[
    "acknowledge",
    "resolve",
    "reopen",
    "silence",
    "expire",
    "retry",  # request retry: a declared action on the owning integration
    "resolve_selected",  # the queue's bulk bar: the rows selected
    "acknowledge_selected",
    "resolve_group",  # an exception group's "Resolve all"
]
ACTING_ROLE = "act"  # the collector's role for acknowledging, resolving, reopening and silencing
BUTTON = "tl-action"
SUBMIT_LABELS: dict[str, str] = {
    "acknowledge": "Acknowledge",
    "resolve": "Mark resolved",
    "reopen": "Reopen",
    "silence": "Silence",
    "expire": "Expire",
    "retry": "Request retry",
    "resolve_selected": "Resolve selected",
    "acknowledge_selected": "Acknowledge selected",
    "resolve_group": "Resolve all",
}
BUTTON_ICONS: dict[str, str] = {
    "acknowledge": "eye",
    "resolve": "check2-circle",
    "reopen": "arrow-counterclockwise",
    "silence": "bell-slash",
    "expire": "bell",
    "retry": "arrow-repeat",
    "resolve_selected": "check2-all",
    "acknowledge_selected": "eye",
    "resolve_group": "check2-all",
}


@dataclass(frozen=True)
class ActionRequest:
    """One action, before it is confirmed: what it is about, and what the dialog says about it."""

    action: Action
    key: str = ""  # resolve, reopen: the transaction as the page names it
    kind: str = ""  # acknowledge: the group
    system: str = ""
    workflow: str = ""  # acknowledge: only this workflow's exceptions; empty: every workflow
    exceptions: int = 0  # acknowledge: for the dialog's wording
    acknowledged: int = 0
    matchers: dict[str, str] = field(default_factory=dict)  # silence: what it matches; expire: for words
    minutes: int = 0  # silence: for how long, from now (whole: a button's id stays plain)
    group: str = ""  # silence: the notification group it is asked from (two groups may share labels)
    silence: str = ""  # expire: the silence's id
    keys: list[str] = field(default_factory=list)  # resolve_selected, acknowledge_selected
    name: str = ""  # retry: the declared action
    step: str = ""  # retry: the step it asks the integration to retry

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | dict[str, Any] | None) -> ActionRequest | None:
        """The request a button or the dialog's store holds; None for anything else."""
        try:
            values = json.loads(text) if isinstance(text, str) else text
            request = cls(**values) if isinstance(values, dict) else None
        except (TypeError, ValueError):
            return None
        return request if request and request.action in SUBMIT_LABELS else None

    @property
    def matched(self) -> str:
        return ", ".join(f"{label} {value}" for label, value in sorted(self.matchers.items()))

    def title(self) -> str:
        if self.action == "retry":
            return f"Request retry: {self.name}"
        if self.action in ("resolve_selected", "acknowledge_selected"):
            return f"{SUBMIT_LABELS[self.action].split()[0]} {fmt.plural(len(self.keys), 'transaction')}"
        if self.action == "resolve_group":
            return f"Resolve every transaction with {self.kind} errors in {self.system}"
        if self.action == "acknowledge":
            return f"Acknowledge {self.kind} errors in {self.system}"
        if self.action == "silence":
            return f"Silence {self.matched} for {fmt.duration(self.minutes * 60)}"
        if self.action == "expire":
            return f"Expire the silence on {self.matched}"
        return f"{SUBMIT_LABELS[self.action]}: {self.key}"

    def explanation(self) -> list[Child]:
        """What the action changes, said before it is done."""
        if self.action == "retry":
            return [
                "Asks the integration that owns ",
                html.Strong(self.step),
                f" ({self.system or 'its system'}) to retry it for ",
                html.Strong(self.key),
                ", with your name and comment. Its answer goes into the audit trail.",
            ]
        if self.action in ("resolve_selected", "acknowledge_selected", "resolve_group"):
            which = (
                html.Strong(
                    ", ".join(self.keys[:5])
                    + (f" and {len(self.keys) - 5} more" if len(self.keys) > 5 else "")
                )
                if self.keys
                else html.Strong(f"{fmt.plural(self.exceptions, 'transaction')} of this group")
            )
            change = (
                " is acknowledged: someone is on it."
                if self.action == "acknowledge_selected"
                else " leaves the queue, the stuck count and value at risk until someone reopens it."
            )
            return ["Each of ", which, change, " Each gets its own audit entry with this comment."]
        if self.action == "acknowledge":
            open_now = self.exceptions - self.acknowledged
            scope = f" in {self.workflow}" if self.workflow else " in every workflow"
            return [
                html.Strong(f"{open_now} unacknowledged of {self.exceptions} open"),
                f" {self.kind} exception{'' if self.exceptions == 1 else 's'} in {self.system}{scope}. ",
                "Acknowledging says someone is on it; it covers the errors that have arrived so far, "
                "and a later error shows as new again.",
            ]
        if self.action == "silence":
            return [
                "Alerts matching ",
                html.Strong(self.matched),
                f" send nothing for {fmt.duration(self.minutes * 60)}: they still fire and show here, "
                "marked silenced. Expire the silence to be told again.",
            ]
        if self.action == "expire":
            return [
                "The silence on ",
                html.Strong(self.matched),
                " ends now: its alerts are notified again from the next one that fires or resolves.",
            ]
        if self.action == "resolve":
            return [
                html.Strong(self.key),
                " leaves the queue, the stuck count and value at risk, and its alerts resolve, "
                "until someone reopens it. Its state stays what its events say.",
            ]
        return [
            html.Strong(self.key),
            " counts again as its state says: back in the queue if it needs attention, "
            "and its alerts may fire again.",
        ]


def cannot_act(client: QueryClient) -> str | None:
    """Why the person (or, without sign-in, the dashboard's key) may not act, in words for its pages;
    None when they may."""
    person = signin.person()
    if person is not None and not person.may_act:
        return (
            f"You are signed in as {person.name} with the {person.role} role, which may look but not act: "
            "acknowledging, resolving and reopening take the operator or admin role."
        )
    try:
        key = client.whoami()
    except ApiUnavailable as error:
        return (
            f"Actions are off for now: the collector did not answer ({error.reason}), "
            "so the dashboard cannot tell whether its API key may act."
        )
    except ApiError as error:
        return f"Actions are off: the collector does not say what the dashboard's API key may do ({error})."
    if ACTING_ROLE in key["roles"]:
        return None
    if person is not None:
        return (
            f"Actions are off: the API key of your role ({key['name']}) may read but not act. Give it "
            f"the {ACTING_ROLE!r} role in the collector's keys file (THREADLINE_OPERATOR_API_KEY)."
        )
    return (
        f"Actions are off: this dashboard's API key ({key['name']}) may read but not act. To "
        f"acknowledge, resolve and reopen from here, give it the {ACTING_ROLE!r} role in the "
        "collector's keys file; sign-in is not configured, so anyone who reaches the dashboard can "
        "then act."
    )


def button(
    request: ActionRequest, label: str | None = None, class_name: str = "", refused: str | None = None
) -> html.Button:
    """A button that opens the dialog for ``request`` (its id carries the request); disabled, saying
    why, when ``refused``."""
    return html.Button(
        [icon(BUTTON_ICONS[request.action]), label or SUBMIT_LABELS[request.action]],
        id={"type": BUTTON, "index": request.encode()},
        n_clicks=0,
        className=f"btn btn-sm btn-outline-primary tl-action tl-action-{request.action} {class_name}".strip(),
        title=refused or request.title(),
        disabled=refused is not None,
    )


def disabled_note(refused: str) -> html.Div:
    """Why the page's actions are disabled, once per page."""
    return html.Div([icon("lock", "me-2"), refused], id="actions-disabled", className="tl-actions-disabled")


def shell_parts(sign_in: bool = False) -> list[Any]:
    """The dialog, the stores it needs and the toast slot, for the shell (outside the page); with
    ``sign_in`` the dialog asks no name (the signed-in person is who acts)."""
    who = (
        dbc.FormText(
            "The audit trail records you as you signed in (e-mail and subject), with your role's API key "
            "and the time.",
            className="tl-muted mt-3 d-block",
            id="action-signed-in",
        )
        if sign_in
        else dbc.FormText(
            "The audit trail records it with the dashboard's API key and the time.", className="tl-muted"
        )
    )
    dialog = dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(id="action-title")),
            dbc.ModalBody(
                [
                    html.P(id="action-explanation", className="tl-action-explanation"),
                    dbc.Label("Comment", html_for="action-comment", className="tl-filter-label"),
                    dbc.Textarea(
                        id="action-comment",
                        placeholder="Why: what you found, what you did, what happens next",
                        rows=3,
                        maxLength=2000,
                        className="tl-action-input",
                    ),
                    dbc.FormFeedback("Say why: the comment goes into the audit trail.", type="invalid"),
                    html.Div(
                        [
                            dbc.Label(
                                "Your name", html_for="action-operator", className="tl-filter-label mt-3"
                            ),
                            dbc.Input(
                                id="action-operator",
                                placeholder="Remembered in this browser",
                                maxLength=128,
                                autoComplete="name",
                                className="tl-action-input",
                            ),
                            dbc.FormFeedback(
                                "Say who you are: everyone here shares the dashboard's API key.",
                                type="invalid",
                            ),
                        ],
                        hidden=sign_in,  # kept for the callbacks' sake; the session says who acts
                    ),
                    who,
                    html.Div(id="action-error", role="alert"),
                ]
            ),
            dbc.ModalFooter(
                [
                    html.Button("Cancel", id="action-cancel", n_clicks=0, className="btn btn-link"),
                    html.Button(id="action-submit", n_clicks=0, className="btn btn-primary"),
                ]
            ),
        ],
        id="action-dialog",
        is_open=False,
        centered=True,
        className="tl-dialog",
    )
    return [
        dcc.Store(id="operator-name", storage_type="local"),
        dcc.Store(id="action-request"),
        dcc.Store(id="data-version", data=0),
        dialog,
        html.Div(id="action-toast", className="tl-toast-slot"),
    ]


def perform(client: QueryClient, request: ActionRequest, comment: str, operator: str) -> tuple[str, Child]:
    """Ask the API to do it; (toast header, what was done). ``ApiError`` when it refused."""
    if request.action == "acknowledge":
        result = client.acknowledge(
            kind=request.kind,
            system=request.system,
            workflow=request.workflow,
            comment=comment,
            operator=operator,
        )
        covered = result["covered"]
        return "Acknowledged", [
            f"{request.kind} errors in {request.system}: ",
            html.Strong(fmt.plural(covered, "open exception")),
            " now acknowledged.",
        ]
    if request.action == "silence":
        ends = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=request.minutes)
        client.create_silence(request.matchers, ends.isoformat(), comment, operator=operator)
        return "Silenced", [
            html.Strong(request.matched),
            f" is silenced until {fmt.full_time(ends, dt.UTC)}.",
        ]
    if request.action == "expire":
        client.expire_silence(request.silence, comment, operator)
        return "Silence expired", ["The silence on ", html.Strong(request.matched), " ended."]
    if request.action == "retry":
        entry = client.request_action(request.key, request.name, comment, operator)
        return _retried(entry)
    if request.action in ("resolve_selected", "acknowledge_selected", "resolve_group"):
        verb = "acknowledge" if request.action == "acknowledge_selected" else "resolve"
        group = (
            {"kind": request.kind, "system": request.system, "workflow": request.workflow}
            if request.action == "resolve_group"
            else None
        )
        summary = client.act_in_bulk(
            verb, comment, operator, correlation_ids=request.keys, exception_group=group
        )
        return _bulk_summary(summary)
    if request.action == "resolve":
        client.resolve(request.key, comment, operator)
        return "Resolved", [html.Strong(request.key), " is marked resolved and leaves the queue."]
    client.reopen(request.key, comment, operator)
    return "Reopened", [html.Strong(request.key), " is open again."]


def outcome_text(entry: AuditEntry) -> str:
    """What the integration answered a retry request, in words."""
    outcome = entry.get("outcome")
    if not outcome:
        return ""
    if outcome["delivered"]:
        return f"{entry['system'] or 'the integration'} took it (HTTP {outcome['status_code']})"
    return f"not delivered: {outcome['error']}"


def _retried(entry: AuditEntry) -> tuple[str, Child]:
    outcome = entry.get("outcome")
    delivered = bool(outcome and outcome["delivered"])
    header = "Retry requested" if delivered else "Retry not delivered"
    return header, [
        f"{entry.get('request')} for ",
        html.Strong(entry["correlation_id"] or ""),
        f": {outcome_text(entry)}.",
    ]


def _bulk_summary(result: BulkActionResult) -> tuple[str, Child]:
    """How many were done, and why the others were not."""
    verb = "Resolved" if result["action"] == "resolve" else "Acknowledged"
    total = len(result["items"])
    parts: list[Child] = [html.Strong(f"{verb} {result['done']} of {fmt.plural(total, 'transaction')}")]
    if result["conflict"]:
        parts.append(f"; {result['conflict']} already done")
    if result["not_found"]:
        parts.append(f"; {result['not_found']} not found")
    return verb, [*parts, "."]


def refusal(error: ApiError) -> str:
    """Why the API did not do it, in a sentence a person can act on."""
    if isinstance(error, ApiUnavailable):
        return f"The collector did not answer ({error.reason}); nothing was recorded. Try again."
    if isinstance(error, ApiRejected) and error.status in (401, 403):
        return f"The collector refused the dashboard's API key: {error}"
    if isinstance(error, ApiRejected) and error.status == 409:
        return f"Nothing to do: {error}. The page now shows the current state."
    return f"The collector refused: {error}"


def register(app: dash.Dash, client: QueryClient) -> None:
    """Open the dialog from any action button; confirm or cancel it."""

    @app.callback(
        Output("action-dialog", "is_open"),
        Output("action-request", "data"),
        Output("action-title", "children"),
        Output("action-explanation", "children"),
        Output("action-submit", "children"),
        Output("action-comment", "value"),
        Output("action-comment", "invalid"),
        Output("action-operator", "value"),
        Output("action-operator", "invalid"),
        Output("action-error", "children"),
        Input({"type": BUTTON, "index": ALL}, "n_clicks"),
        State("operator-name", "data"),
        prevent_initial_call=True,
    )
    def open_dialog(_clicks: list[int | None], operator: str | None) -> tuple[Any, ...]:
        """A click on an action button; a button that is merely drawn (n_clicks 0) does nothing."""
        triggered = dash.ctx.triggered[0] if dash.ctx.triggered else {}
        request = ActionRequest.decode(dash.ctx.triggered_id["index"]) if triggered.get("value") else None
        if request is None:
            return (dash.no_update,) * 10
        return (
            True,
            asdict(request),
            request.title(),
            request.explanation(),
            SUBMIT_LABELS[request.action],
            "",
            False,
            operator or "",
            False,
            None,
        )

    @app.callback(
        Output("action-dialog", "is_open", allow_duplicate=True),
        Input("action-cancel", "n_clicks"),
        prevent_initial_call=True,
    )
    def cancel(_clicks: int) -> bool:
        return False

    @app.callback(
        Output("action-dialog", "is_open", allow_duplicate=True),
        Output("action-comment", "invalid", allow_duplicate=True),
        Output("action-operator", "invalid", allow_duplicate=True),
        Output("action-error", "children", allow_duplicate=True),
        Output("operator-name", "data"),
        Output("data-version", "data"),
        Output("action-toast", "children"),
        Input("action-submit", "n_clicks"),
        State("action-request", "data"),
        State("action-comment", "value"),
        State("action-operator", "value"),
        State("data-version", "data"),
        prevent_initial_call=True,
        running=[(Output("action-submit", "disabled"), True, False)],
    )
    def submit(
        clicks: int,
        data: dict[str, Any] | None,
        comment: str | None,
        operator: str | None,
        version: int | None,
    ) -> tuple[Any, ...]:
        """Record the action; on success close, remember the name, redraw the page and say so."""
        person = signin.require_acting()  # 403 to a viewer, whatever the request holds
        request = ActionRequest.decode(data)
        if not clicks or request is None:
            return (dash.no_update,) * 7
        comment, operator = (comment or "").strip(), (operator or "").strip()
        if person is not None:
            operator = person.for_audit()  # never a typed name when people sign in
        if not comment or not operator:
            return (dash.no_update, not comment, not operator, None, *(dash.no_update,) * 3)
        if refused := cannot_act(client):
            return dash.no_update, False, False, _refused(refused), *(dash.no_update,) * 3
        try:
            header, done = perform(client, request, comment, operator)
        except ApiError as error:
            conflict = isinstance(error, ApiRejected) and error.status == 409
            return (
                dash.no_update,
                False,
                False,
                _refused(refusal(error)),
                dash.no_update,
                (version or 0) + int(conflict),
                dash.no_update,
            )
        toast = dbc.Toast(
            html.Div(done, id="action-result"),
            header=[icon("check2-circle", "me-2 tl-text-completed"), header],
            is_open=True,
            dismissable=True,
            duration=8000,
            className="tl-toast",
        )
        remembered = dash.no_update if person else operator
        return False, False, False, None, remembered, (version or 0) + 1, toast


def _refused(message: str) -> dbc.Alert:
    """Why nothing was recorded, in the dialog."""
    return dbc.Alert(
        [icon("exclamation-triangle", "me-2"), message],
        color="warning",
        className="tl-action-refused",
        id="action-refused",
    )
