"""The dashboard application: ``create_app`` builds it, ``run`` serves it (``threadline dashboard``).

Everything it shows comes from the collector's query API over HTTP; it never touches the store.
All styles, fonts and scripts are served from this package, so it works without internet access.
It is served by gunicorn (a production WSGI server; Flask's own is for development), under
``base_path`` when a reverse proxy forwards a sub-path to it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dash
from gunicorn.app.base import BaseApplication

from . import actions, layout, router, security, signin, urls
from .client import QueryClient
from .config import DashboardSettings

ASSETS = Path(__file__).resolve().parent / "assets"
VENDOR_CSS = ("vendor/bootstrap-5.3.6.min.css", "vendor/bootstrap-icons-1.13.1.min.css")


# One process, its threads serving the callbacks; the dashboard keeps nothing between requests (the
# session is a signed cookie), so more workers would only hold more copies of Dash.
WORKERS, THREADS = 1, 8
# Seconds a request may take: the collector's slowest answers at scale take tens of seconds.
REQUEST_TIMEOUT_S = 120


def create_app(settings: DashboardSettings | None = None, client: QueryClient | None = None) -> dash.Dash:
    """A Dash app reading the query API at ``settings.api``, with sign-in when an issuer is set."""
    settings = settings or DashboardSettings()
    sign_in = signin.SignIn(settings, settings.base_path) if settings.sign_in else None
    client = client or QueryClient(
        settings.api,
        api_key=settings.api_key,
        key_for_request=signin.key_chooser() if sign_in else None,
    )
    base = settings.base_path
    urls.set_base_path(base)
    app = dash.Dash(
        __name__,
        title="Threadline",
        update_title=None,  # type: ignore[arg-type]  # typed str, but documented: None keeps the title
        assets_folder=str(ASSETS),
        assets_path_ignore=["^vendor$"],  # vendored CSS is linked first, below, so ours can override it
        external_stylesheets=[f"{base}assets/{path}" for path in VENDOR_CSS],
        requests_pathname_prefix=base,
        routes_pathname_prefix=base,
        suppress_callback_exceptions=True,  # pages add their controls when the router draws them
        serve_locally=True,
        meta_tags=[
            {"name": "viewport", "content": "width=device-width, initial-scale=1"},
            {"name": "description", "content": "Threadline: business-transaction tracing for integrations"},
        ],
    )
    app.layout = layout.shell(client.base_url, sign_in=sign_in is not None)
    layout.register(app, client)
    actions.register(app, client)
    router.register(app, client)
    if sign_in:
        sign_in.install(app.server)
        signin.register(app)
    form_targets = [sign_in.issuer_origin] if sign_in else []
    # After every callback is registered: the hashes cover Dash's inline scripts.
    security.install(app.server, security.policy(app.csp_hashes(), form_targets))
    return app


class _Gunicorn(BaseApplication):  # gunicorn ships no type information (pyproject: mypy overrides)
    """gunicorn serving one WSGI application, configured here rather than by its command line."""

    def __init__(self, application: Any, options: dict[str, Any]) -> None:
        self.application, self.options = application, options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            if name in self.cfg.settings:  # control_socket_disable: gunicorn 25 and later only
                self.cfg.set(name, value)

    def load(self) -> Any:
        return self.application


def run(settings: DashboardSettings) -> None:
    """Serve the dashboard with gunicorn until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too much
    app = create_app(settings)
    logging.getLogger("threadline.dashboard").info(
        "Threadline dashboard on http://%s:%d%s, reading %s, %s",
        settings.host,
        settings.port,
        settings.base_path,
        settings.api,
        f"sign-in at {settings.oidc_issuer}" if settings.sign_in else "sign-in not configured",
    )
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": WORKERS,
        "threads": THREADS,
        "worker_class": "gthread",
        "timeout": REQUEST_TIMEOUT_S,
        # No control socket: it is one path per user, which two dashboards on a machine would share.
        "control_socket_disable": True,
    }
    _Gunicorn(app.server, options).run()
