"""What every answer of the dashboard carries, and the cross-site requests it refuses.

- Headers: a content security policy its pages pass (scripts only from itself and Dash's own inline
  scripts, by their hashes; no framing), ``X-Frame-Options: DENY``, ``Referrer-Policy`` and
  ``X-Content-Type-Options``. Styles allow ``'unsafe-inline'``: Plotly and the grids write
  ``<style>`` elements at run time, and a style cannot run code.
- Cross-site requests: a request that may change something (any method but GET, HEAD, OPTIONS: the
  Dash callbacks that act, the sign-out) must come from a page of this dashboard, as its ``Origin``
  (or, without one, its ``Referer``) says; anything else gets 403. A page of another site can make
  the browser send such a request, cookie and all, but cannot make it say it came from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import flask
from werkzeug.wrappers import Response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def policy(script_hashes: Iterable[str], form_targets: Iterable[str] = ()) -> str:
    """The content security policy: ``form_targets`` are origins a form may lead to (the provider's
    logout, which the sign-out form's answer redirects to)."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'", *form_targets],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def install(server: flask.Flask, content_policy: str) -> None:
    """The headers on every answer, and the same-origin check before any request that may act."""

    @server.before_request
    def same_origin() -> Response | None:
        request = flask.request
        if request.method in SAFE_METHODS:
            return None
        sender = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if urlsplit(sender).netloc == request.host:
            return None
        response = flask.jsonify(
            error="cross_site",
            message="refused: this request did not come from a page of this dashboard (Origin/Referer)",
        )
        response.status_code = 403
        return response

    @server.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = content_policy
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response
