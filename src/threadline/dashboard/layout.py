"""The shell around every page: navigation, search, refresh control, theme toggle and the API banner.

The shell's browser-side behaviour (colour mode, time zone, tab title) is in assets/threadline.js;
the search box is answered here, server-side, because only the API knows which keys exist.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, NoUpdate, Output, State, dcc, html

from . import actions
from .client import ApiError, ApiRejected, ApiUnavailable, NotFound, QueryClient
from .components import Child, icon
from .urls import ALERTS, OVERVIEW, QUEUE, SYSTEMS, WORKFLOWS, href, transaction_path

REFRESH_CHOICES = {"0": "Off", "10": "10 s", "30": "30 s", "60": "1 min", "300": "5 min"}
DEFAULT_REFRESH = "30"


def _brand() -> dcc.Link:
    return dcc.Link(
        [
            html.Span(
                [html.Span(className="tl-logo-line"), html.Span(className="tl-logo-dot")], className="tl-logo"
            ),
            html.Span("Threadline", className="tl-brand-name"),
        ],
        href=href(OVERVIEW),
        className="tl-brand",
    )


def _nav() -> dbc.Nav:
    return dbc.Nav(
        [
            dbc.NavLink(
                [icon("grid-1x2"), "Overview"], href=href(OVERVIEW), active="exact", id="nav-overview"
            ),
            dbc.NavLink(
                [icon("inbox"), "Queue", html.Span(id="queue-badge", className="tl-nav-badge")],
                href=href(QUEUE),
                active="exact",
                id="nav-queue",
            ),
            dbc.NavLink(
                [
                    icon("bell"),
                    "Alerts",
                    html.Span(id="alerts-badge", className="tl-nav-badge tl-nav-badge-alert"),
                ],
                href=href(ALERTS),
                active="exact",
                id="nav-alerts",
            ),
            dbc.NavLink(
                [icon("diagram-3"), "Process maps"], href=href(WORKFLOWS), active="partial", id="nav-maps"
            ),
            dbc.NavLink(
                [icon("hdd-network"), "Systems"], href=href(SYSTEMS), active="exact", id="nav-systems"
            ),
        ],
        className="tl-nav",
        navbar=True,
    )


def _search() -> html.Div:
    return html.Div(
        [
            html.Span(icon("search"), className="tl-search-icon"),
            dcc.Input(
                id="search-input",
                type="search",
                placeholder="Search a key or alias…",
                debounce=False,
                autoComplete="off",
                spellCheck=False,
                className="tl-search-input",
                n_submit=0,
            ),
            html.Kbd("↵", className="tl-search-kbd"),
            html.Div(id="search-feedback", className="tl-search-feedback", role="status"),
        ],
        className="tl-search",
    )


def _refresh() -> html.Div:
    return html.Div(
        [
            html.Button(
                icon("arrow-clockwise"),
                id="refresh-now",
                className="tl-icon-button",
                title="Refresh now",
                n_clicks=0,
            ),
            dbc.Select(
                id="refresh-every",
                options=[
                    {"label": f"Auto: {label}", "value": value} for value, label in REFRESH_CHOICES.items()
                ],
                value=DEFAULT_REFRESH,
                persistence=True,
                persistence_type="local",
                size="sm",
                className="tl-refresh-select",
            ),
        ],
        className="tl-refresh",
        title="How often the page refreshes itself",
    )


def shell(api_url: str, sign_in: bool = False) -> html.Div:
    """The page frame; the router fills ``page`` and ``api-banner`` from the URL, and, with
    ``sign_in``, signin.py the signed-in person and the sign-out button."""
    navbar = html.Header(
        html.Div(
            [
                _brand(),
                _nav(),
                html.Div(
                    [
                        _search(),
                        _refresh(),
                        html.Button(
                            html.I(id="theme-toggle-icon", className="bi bi-moon-stars"),
                            id="theme-toggle",
                            className="tl-icon-button",
                            title="Switch between light and dark",
                            n_clicks=0,
                        ),
                        html.Div(id="signed-in", className="tl-signed-in"),
                    ],
                    className="tl-toolbar",
                ),
            ],
            className="tl-navbar-inner",
        ),
        className="tl-navbar",
    )
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id="theme"),
            dcc.Store(id="client-tz"),
            dcc.Store(id="page-title"),
            dcc.Interval(id="refresh-timer", interval=int(DEFAULT_REFRESH) * 1000),
            navbar,
            html.Div(id="api-banner", className="tl-banner-slot"),
            html.Main(
                dcc.Loading(
                    html.Div(id="page", className="tl-page"),
                    id="page-loading",
                    type="circle",
                    delay_show=350,
                    overlay_style={"visibility": "visible", "opacity": 0.55, "filter": "saturate(0.6)"},
                    color="var(--bs-primary)",
                    parent_className="tl-loading",
                ),
                className="tl-main",
            ),
            html.Footer(
                [
                    html.Span(["Threadline · reading ", html.Code(api_url, className="tl-footer-code")]),
                    html.Span(id="last-updated", className="tl-updated"),
                ],
                className="tl-footer",
            ),
            *actions.shell_parts(sign_in),
        ],
        className="tl-app",
    )


def banner_for(error: ApiError, refresh_seconds: int | None) -> dbc.Alert:
    """What a person sees when the API fails: what is wrong, and that it will retry by itself."""
    retry = f"Retrying every {refresh_seconds} s." if refresh_seconds else "Press refresh to try again."
    if isinstance(error, ApiUnavailable):
        return dbc.Alert(
            [
                icon("plug", "tl-banner-icon"),
                html.Div(
                    [
                        html.Strong("Cannot reach the Threadline collector. "),
                        html.Span(f"{error.base_url} — {error.reason}. "),
                        html.Span(
                            [
                                "Check that ",
                                html.Code("threadline collector"),
                                " is running and that ",
                                html.Code("--api"),
                                " points at it. ",
                                retry,
                            ]
                        ),
                    ]
                ),
            ],
            color="danger",
            className="tl-banner",
            id="api-unavailable",
        )
    if isinstance(error, ApiRejected) and error.status in (401, 403):
        hint = (
            "Start the dashboard with --api-key (or THREADLINE_API_KEY) set to a key with the read role."
            if error.status == 401
            else "The dashboard's API key needs the read role."
        )
        return dbc.Alert(
            [
                icon("key", "tl-banner-icon"),
                html.Div(
                    [html.Strong("The collector refused the dashboard's API key. "), f"{error} — {hint}"]
                ),
            ],
            color="warning",
            className="tl-banner",
            id="api-unauthorized",
        )
    return dbc.Alert(
        [
            icon("exclamation-triangle", "tl-banner-icon"),
            html.Div([html.Strong("The API refused: "), str(error)]),
        ],
        color="warning",
        className="tl-banner",
        id="api-error",
    )


def register(app: dash.Dash, client: QueryClient) -> None:
    """The shell's callbacks: search, refresh interval, colour mode, time zone, tab title."""
    app.clientside_callback(
        ClientsideFunction("threadline", "theme"),
        Output("theme", "data"),
        Input("theme-toggle", "n_clicks"),
        State("theme", "data"),
    )
    app.clientside_callback(
        ClientsideFunction("threadline", "toggleIcon"),
        Output("theme-toggle-icon", "className"),
        Input("theme", "data"),
    )
    app.clientside_callback(
        ClientsideFunction("threadline", "timeZone"),
        Output("client-tz", "data"),
        Input("url", "pathname"),
        State("client-tz", "data"),
    )
    app.clientside_callback(ClientsideFunction("threadline", "title"), Input("page-title", "data"))
    app.clientside_callback(
        ClientsideFunction("threadline", "refreshInterval"),
        Output("refresh-timer", "interval"),
        Output("refresh-timer", "disabled"),
        Input("refresh-every", "value"),
    )

    @app.callback(
        Output("url", "href", allow_duplicate=True),
        Output("search-feedback", "children"),
        Output("search-input", "value"),
        Input("search-input", "n_submit"),
        Input("search-input", "value"),
        Input("url", "pathname"),
        prevent_initial_call=True,
    )
    def search(
        _submits: int, value: str | None, _pathname: str | None
    ) -> tuple[str | NoUpdate, object, str | NoUpdate]:
        """Enter on a known key or alias opens its transaction; an unknown one is said so, in place.

        Typing again, or going elsewhere, clears what was said (one callback, so the two never race).
        """
        typed = value or ""
        if "search-input.n_submit" not in dash.ctx.triggered_prop_ids or not typed.strip():
            return dash.no_update, None, dash.no_update
        # The key as typed first (a stored key may begin or end with a space), then without the
        # blanks a paste brings along.
        for key in dict.fromkeys((typed, typed.strip())):
            try:
                client.transaction(key)
            except NotFound:
                continue
            except ApiError as error:
                return (
                    dash.no_update,
                    html.Div([icon("plug", "me-2"), str(error)], id="search-error"),
                    dash.no_update,
                )
            return href(transaction_path(key)), None, ""  # the key as typed: the page says which alias it is
        message: list[Child] = [
            icon("question-circle", "me-2"),
            "No transaction has the key ",
            html.Strong(f"“{typed.strip()}”"),
            ".",
        ]
        return dash.no_update, html.Div(message, id="search-not-found"), dash.no_update
