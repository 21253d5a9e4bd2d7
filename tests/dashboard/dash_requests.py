"""Dash's callback requests sent without a browser, as a script holding a person's cookie could."""

from __future__ import annotations

from typing import Any

import httpx


def submit_action(
    dashboard_url: str,
    request: dict[str, Any],
    comment: str,
    operator: str,
    cookies: dict[str, str] | None = None,
) -> httpx.Response:
    """The action dialog's submit callback (``request``: its action and key), as a plain JSON POST to
    Dash's callback endpoint, built from Dash's own description of it (``/_dash-dependencies``).

    It says it comes from the dashboard's own page (``Origin``), as the page's requests do."""
    with httpx.Client(
        base_url=dashboard_url, cookies=cookies, headers={"Origin": dashboard_url}, timeout=30
    ) as client:
        callbacks = client.get("/_dash-dependencies").json()
        submit = next(c for c in callbacks if {"id": "action-submit", "property": "n_clicks"} in c["inputs"])
        values = {
            "action-submit": 1,
            "action-request": request,
            "action-comment": comment,
            "action-operator": operator,
            "data-version": 0,
        }
        outputs = [part.split(".", 1) for part in submit["output"].strip(".").split("...")]
        body = {
            "output": submit["output"],
            "outputs": [{"id": name, "property": prop} for name, prop in outputs],
            "inputs": [{**dep, "value": values[dep["id"]]} for dep in submit["inputs"]],
            "state": [{**dep, "value": values[dep["id"]]} for dep in submit["state"]],
            "changedPropIds": ["action-submit.n_clicks"],
        }
        return client.post("/_dash-update-component", json=body)
