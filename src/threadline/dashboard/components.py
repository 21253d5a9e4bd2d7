"""The visual building blocks every page uses: cards, KPI tiles, status badges, empty states.

Pages compose these instead of styling markup themselves, so spacing, type and status colours stay
the same from one page to the next (the styles live in assets/threadline.css).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from .formatting import state_label
from .urls import RANGES, Query, href

Child = Any  # a Dash component, a string, or a list of them


def wildcard(attributes: dict[str, str]) -> dict[str, Any]:
    """``aria-*`` and ``data-*`` attributes, as keyword arguments of a Dash component: Dash accepts
    them, but their names are not identifiers, so no typed parameter of the component describes them."""
    return attributes


def icon(name: str, class_name: str = "") -> html.I:
    """A Bootstrap Icons glyph (the font is vendored in assets/vendor: nothing loads from a CDN)."""
    return html.I(className=f"bi bi-{name} {class_name}".strip(), **wildcard({"aria-hidden": "true"}))


def state_badge(state: str, id: str | None = None) -> html.Span:
    """A transaction or step state in its colour: stuck amber, failed red, completed green, ..."""
    props: dict[str, Any] = {"id": id} if id else {}
    return html.Span(
        [html.Span(className="tl-dot"), state_label(state)], className=f"tl-badge tl-state-{state}", **props
    )


def tag(text: Child, tone: str = "neutral", title: str | None = None, class_name: str = "") -> html.Span:
    """A small label: an issue (breached, violation), an alias, a system."""
    return html.Span(text, className=f"tl-tag tl-tone-{tone} {class_name}".strip(), title=title)


def system_chip(system: str | None) -> html.Span:
    """The system that did a step, with its icon."""
    return html.Span([icon("hdd-network"), system or "unknown"], className="tl-system")


def page_header(title: str, subtitle: Child = None, actions: Child = None, kicker: Child = None) -> html.Div:
    """Title and one line of context on the left, the page's filters on the right."""
    return html.Div(
        [
            html.Div(
                [
                    html.Div(kicker, className="tl-kicker") if kicker else None,
                    html.H1(title, className="tl-page-title"),
                    html.P(subtitle, className="tl-page-subtitle") if subtitle else None,
                ],
                className="tl-page-heading",
            ),
            html.Div(actions, className="tl-page-actions") if actions else None,
        ],
        className="tl-page-header",
    )


def card(
    title: Child = None,
    body: Child = None,
    actions: Child = None,
    subtitle: Child = None,
    class_name: str = "",
    flush: bool = False,
    id: str | None = None,
) -> dbc.Card:
    """A titled panel; ``flush`` drops the body padding for tables and charts that fill it."""
    header = None
    if title or actions:
        header = html.Div(
            [
                html.Div(
                    [
                        html.H2(title, className="tl-card-title") if title else None,
                        html.Div(subtitle, className="tl-card-subtitle") if subtitle else None,
                    ]
                ),
                html.Div(actions, className="tl-card-actions") if actions else None,
            ],
            className="tl-card-header",
        )
    props: dict[str, Any] = {"id": id} if id else {}
    return dbc.Card(
        [header, html.Div(body, className="tl-card-body" + (" tl-flush" if flush else ""))],
        className=f"tl-card {class_name}".strip(),
        **props,
    )


def kpi(
    id: str,
    label: str,
    value: Child,
    detail: Child = None,
    tone: str = "neutral",
    icon_name: str = "",
    help_text: str | None = None,
) -> html.Div:
    """A key figure: label, big value (``id`` is on the value, for tests and links), one line of detail."""
    return html.Div(
        [
            html.Div(
                [
                    html.Span(label, className="tl-kpi-label"),
                    html.Span(icon(icon_name), className=f"tl-kpi-icon tl-tone-{tone}")
                    if icon_name
                    else None,
                ],
                className="tl-kpi-top",
            ),
            html.Div(value, id=id, className="tl-kpi-value"),
            html.Div(detail, className="tl-kpi-detail") if detail is not None else None,
        ],
        className=f"tl-kpi tl-kpi-{tone}",
        title=help_text,
    )


def empty_state(title: str, body: Child = None, icon_name: str = "inbox", actions: Child = None) -> html.Div:
    """Nothing to show, said plainly, with what to do next."""
    return html.Div(
        [
            html.Div(icon(icon_name), className="tl-empty-icon"),
            html.H3(title, className="tl-empty-title"),
            html.Div(body, className="tl-empty-body") if body else None,
            html.Div(actions, className="tl-empty-actions") if actions else None,
        ],
        className="tl-empty",
    )


def range_picker(path: str, query: Query, choices: Sequence[str] = tuple(RANGES)) -> html.Div:
    """Time-range presets as links, so the chosen range is in the URL like every other filter."""
    current = query.range_key() if not (query.get("since") or query.get("until")) else ""
    return html.Div(
        [
            dcc.Link(
                key if key != "all" else "All",
                href=href(path, query.with_(range=key, since=None, until=None)),
                className="tl-segment" + (" active" if key == current else ""),
                title=RANGES[key][0],
            )
            for key in choices
        ],
        className="tl-segmented",
        role="group",
        **wildcard({"aria-label": "Time range"}),
    )


def select(
    id: str,
    options: Sequence[dict[str, str] | str],
    value: str | list[str] | None,
    placeholder: str,
    multi: bool = False,
    width: int = 200,
) -> dcc.Dropdown:
    """A filter dropdown; its value goes into the URL (see the page's filter callback)."""
    return dcc.Dropdown(
        id=id,
        options=list(options),
        value=value,
        placeholder=placeholder,
        multi=multi,
        clearable=True,
        searchable=True,
        className="tl-select",
        style={"minWidth": f"{width}px"},
    )


def labelled(label: str, control: Child) -> html.Div:
    """A filter with its small caps label above it."""
    return html.Div([html.Label(label, className="tl-filter-label"), control], className="tl-filter")
