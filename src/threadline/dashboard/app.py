"""The dashboard application: ``create_app`` builds it, ``run`` serves it (``threadline dashboard``).

Everything it shows comes from the collector's query API over HTTP; it never touches the store.
All styles, fonts and scripts are served from this package, so it works without internet access.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash

from . import actions, layout, router
from .client import QueryClient
from .config import DEFAULT_API, DashboardSettings

ASSETS = Path(__file__).resolve().parent / "assets"
VENDOR_CSS = ("vendor/bootstrap-5.3.6.min.css", "vendor/bootstrap-icons-1.13.1.min.css")


def create_app(
    api_url: str = DEFAULT_API, api_key: str | None = None, client: QueryClient | None = None
) -> dash.Dash:
    """A Dash app reading the query API at ``api_url`` (with ``Authorization: Bearer api_key`` if given)."""
    client = client or QueryClient(api_url, api_key=api_key)
    app = dash.Dash(
        __name__,
        title="Threadline",
        update_title=None,  # type: ignore[arg-type]  # typed str, but documented: None keeps the title
        assets_folder=str(ASSETS),
        assets_path_ignore=["^vendor$"],  # vendored CSS is linked first, below, so ours can override it
        external_stylesheets=[f"/assets/{path}" for path in VENDOR_CSS],
        suppress_callback_exceptions=True,  # pages add their controls when the router draws them
        serve_locally=True,
        meta_tags=[
            {"name": "viewport", "content": "width=device-width, initial-scale=1"},
            {"name": "description", "content": "Threadline: business-transaction tracing for integrations"},
        ],
    )
    app.layout = layout.shell(client.base_url)
    layout.register(app, client)
    actions.register(app, client)
    router.register(app, client)
    return app


def run(settings: DashboardSettings) -> None:
    """Serve the dashboard until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "httpx"):  # one line per request is too much for a dashboard's log
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = create_app(settings.api, settings.api_key)
    logging.getLogger("threadline.dashboard").info(
        "Threadline dashboard on http://%s:%d, reading %s", settings.host, settings.port, settings.api
    )
    app.run(host=settings.host, port=settings.port, debug=False, threaded=True)
