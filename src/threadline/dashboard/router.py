"""The router: draws the page the URL names, and the API banner when the API cannot answer.

One callback for every page, fired by the URL, the refresh timer or button, the colour mode, the
browser's time zone and ``data-version`` (an operator's action was recorded: redraw from the API).
A page never shows a traceback: API failures become a banner, anything else a short message (with
the details in the dashboard's log).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from . import formatting as fmt
from .client import ApiError, ApiUnavailable, NotFound, QueryClient, shared_ages
from .components import card, empty_state
from .layout import banner_for
from .page import PageContext, Rendered
from .pages import alerts, overview, process_map, queue, systems, transaction
from .theme import palette
from .urls import ALERTS, OVERVIEW, QUEUE, SYSTEMS, TRANSACTIONS, WORKFLOWS, Query, href, page_path

logger = logging.getLogger("threadline.dashboard")
Renderer = Callable[[PageContext], Rendered]


def page_for(pathname: str) -> Renderer | None:
    """The page that draws ``pathname``; None for a path no page has."""
    path = pathname.rstrip("/") or "/"
    if path == OVERVIEW:
        return overview.render
    if path == QUEUE:
        return queue.render
    if path == ALERTS:
        return alerts.render
    if path == SYSTEMS:
        return systems.render
    if path + "/" == WORKFLOWS or pathname.startswith(WORKFLOWS):
        return process_map.render
    if pathname.startswith(TRANSACTIONS) or path + "/" == TRANSACTIONS:
        return transaction.render
    return None


def _not_found(pathname: str) -> Rendered:
    body = empty_state(
        "This page does not exist",
        [f"Nothing lives at {pathname}. ", dcc.Link("Go to the overview", href=href(OVERVIEW)), "."],
        "signpost",
    )
    return Rendered("Not found", card(body=body))


def _unavailable() -> Rendered:
    body = empty_state(
        "Waiting for the collector",
        "The figures appear as soon as the query API answers again.",
        "hourglass-split",
    )
    return Rendered("Unavailable", card(body=html.Div(body, id="page-unavailable")))


def register(app: dash.Dash, client: QueryClient) -> None:
    """The router callback, and each page's own callbacks (filters into the URL, clicks)."""
    for module in (overview, queue, alerts, transaction, process_map, systems):
        module.register(app)

    @app.callback(
        Output("page", "children"),
        Output("api-banner", "children"),
        Output("page-title", "data"),
        Output("last-updated", "children"),
        Output("queue-badge", "children"),
        Output("alerts-badge", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
        Input("refresh-timer", "n_intervals"),
        Input("refresh-now", "n_clicks"),
        Input("theme", "data"),
        Input("client-tz", "data"),
        Input("data-version", "data"),
        State("refresh-every", "value"),
    )
    def route(
        pathname: str | None,
        search: str | None,
        _ticks: int | None,
        _clicks: int | None,
        theme: str | None,
        tz_name: str | None,
        _version: int | None,
        refresh: str | None,
    ) -> tuple[Any, Any, str, Any, Any, Any]:
        """The page, the banner (if any), the tab title, "updated at" and the queue and alerts badges."""
        pathname = page_path(pathname or "/")
        now = dt.datetime.now(dt.UTC)
        tz = fmt.zone(tz_name)
        updated = [
            f"Updated {fmt.clock(now, tz, now)}",
            html.Span(f" · times in {tz_name or 'UTC'}", className="tl-muted"),
        ]
        render = page_for(pathname)
        if render is None:
            result = _not_found(pathname)
            return result.content, None, result.title, updated, dash.no_update, dash.no_update
        context = PageContext(client, pathname, Query.parse(search), palette(theme), tz, now)
        try:
            with shared_ages() as ages:
                result = render(context)
                badge, firing = _queue_badge(client), _alerts_badge(client)
            if ages and max(ages) > 0:
                updated.insert(1, _shared_note(max(ages)))
        except ApiUnavailable as error:
            seconds = int(refresh or 0) or None
            result = _unavailable()
            return result.content, banner_for(error, seconds), result.title, updated, None, None
        except ApiError as error:
            return (
                card(body=empty_state("The API refused this view", str(error), "exclamation-triangle")),
                banner_for(error, None),
                "Error",
                updated,
                dash.no_update,
                dash.no_update,
            )
        except Exception:
            logger.exception("threadline dashboard: drawing %s%s failed", pathname, search or "")
            body = empty_state(
                "This view could not be drawn",
                "Something unexpected happened; the dashboard's log has the details. Try refreshing.",
                "bug",
            )
            return card(body=body), None, "Error", updated, dash.no_update, dash.no_update
        return result.content, None, result.title, updated, badge, firing


def _shared_note(age_s: int) -> Any:
    """Said beside "Updated": at scale the collector shares an answer between the people looking."""
    return html.Span(
        f" · some figures from {fmt.duration(age_s, parts=1)} ago",
        id="shared-age",
        className="tl-muted",
        title=(
            "The collector computed these figures for another viewer a moment ago and shared them "
            "(a large store takes seconds per answer); they refresh within a minute."
        ),
    )


def _queue_badge(client: QueryClient) -> Any:
    """How many open transactions need attention (the queue's default view), next to the Queue link."""
    total = client.transactions(attention=True, states=queue.OPEN_STATES, limit=1)["total"]
    return f"{total:,}" if total else None


def _alerts_badge(client: QueryClient) -> Any:
    """How many alerts are firing, next to the Alerts link (none from a collector without alerting)."""
    try:
        firing = client.alerts(status="firing", limit=1)["firing"]
    except NotFound:
        return None
    return f"{firing:,}" if firing else None
