"""The collector's FastAPI application: ingest, query API, health and metrics."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

from threadline.contract.redaction import Redactor

from . import http_errors
from .alerts.service import Alerting
from .alerts.settings import AlertSettings
from .auth import load_keys
from .config import CollectorSettings
from .ingest.webhooks import load as load_webhooks
from .ingest.writer import Writer
from .metrics import Metrics
from .routes import alerts as alert_routes
from .routes import cloud_events, exception_groups, health, ingest, keys, queries, webhooks
from .service import Collector
from .shared_reads import SharedReads
from .state.forecast import Forecasts
from .state.snapshot import StateKeeper
from .storage import Store
from .storage.backfill import AggregateBackfill
from .storage.busy import StoreBusy
from .storage.repair import repair_at_start
from .storage.retention import RetentionKeeper
from .timeouts import BodyDeadline
from .workflows import WorkflowError, Workflows
from .workflows import load as load_workflows

logger = logging.getLogger("threadline.collector")
OPENAPI_URL = "/openapi.json"
RETENTION_INTERVAL_S = 3600.0  # data is kept for days: an hour late costs nothing


def _reload_on_sighup(collector: Collector) -> Callable[[], None]:
    """``kill -HUP`` reloads the workflow definitions (keeping the old ones if the file is bad)."""
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def reload(signum: int, frame: object) -> None:
        with contextlib.suppress(WorkflowError):
            collector.reload_workflows()

    previous = signal.signal(signal.SIGHUP, reload)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous)

    return restore


def create_app(settings: CollectorSettings | None = None, alerts: AlertSettings | None = None) -> FastAPI:
    """The collector with these settings (default: from the environment, as ``threadline collector``)."""
    settings = settings or CollectorSettings.from_environment()
    alerts = alerts or AlertSettings.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workflows = load_workflows(settings.workflows)  # a bad definition stops the start, naming the line
        keys = load_keys(settings.api_keys)
        webhooks = load_webhooks(settings.webhooks)  # a bad mapping stops the start, naming it
        # Retention is the keeper's (per tenant, whole transactions), but on a cluster, where it does
        # not run yet: there new tables get THREADLINE_TTL_DAYS as a table TTL, as before.
        store = Store(
            settings.store,
            cluster=settings.cluster,
            ttl_days=settings.ttl_days if settings.cluster else None,
            read_timeout_s=settings.read_timeout,
            read_connections=settings.read_connections,
        ).open()
        repair_at_start(store)  # before ingest: what a crash cut off between events and their views
        metrics = Metrics(StoreBusy(store))
        writer = Writer(
            store, metrics, settings.batch_window_ms / 1000, max_pending_events=settings.max_pending_events
        )
        writer.start()
        backfill = AggregateBackfill(store)  # only a store older than the aggregates has any
        if settings.backfill:
            backfill.start()

        def workflows_in_force() -> Workflows:
            # The collector's, which a reload (SIGHUP) replaces; first asked by alerting.start() below.
            return collector.workflows

        keeper = StateKeeper(store, workflows_in_force, settings.state_interval, metrics.registry)
        forecasts = Forecasts(store, workflows_in_force, settings.forecast_window, settings.forecast_interval)
        alerting = Alerting(store, workflows_in_force, metrics.registry, alerts, forecasts=forecasts.model)
        collector = Collector(
            settings,
            store,
            writer,
            metrics,
            workflows,
            alerting,
            forecasts,
            keeper,
            keys=keys,
            webhooks=webhooks,
            redactor=Redactor(settings.redact_keys, settings.redact_salt),
        )
        app.state.collector = collector
        retention = RetentionKeeper(store, collector.retention, RETENTION_INTERVAL_S)
        keeper.start()
        forecasts.start()
        retention.start()
        alerting.start()
        restore_sighup = _reload_on_sighup(collector)
        logger.info(
            "threadline: collector ready, store %s, %d workflows from %s",
            store.redacted_dsn,
            len(workflows),
            workflows.source,
        )
        try:
            yield
        finally:
            restore_sighup()
            alerting.stop()
            retention.stop()
            forecasts.stop()
            keeper.stop()
            backfill.stop()
            writer.stop()
            store.close()

    app = FastAPI(
        title="Threadline collector",
        version=version("threadline"),
        description="Business-transaction tracing for enterprise integrations: ingest and query API.",
        lifespan=lifespan,
        # Served below, behind a key when keys are configured: the schema maps every endpoint.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    http_errors.install(app)
    app.add_middleware(BodyDeadline, timeout_s=settings.body_timeout, min_rate=settings.body_min_rate)
    # Outermost: it shares finished answers, whatever produced them (auth and limits included).
    app.add_middleware(
        SharedReads, ttl_s=settings.shared_read_seconds, min_cost_s=settings.shared_read_min_seconds
    )
    app.include_router(ingest.router)
    app.include_router(webhooks.router)
    app.include_router(cloud_events.router)
    app.include_router(queries.router)
    app.include_router(queries.platform)
    app.include_router(exception_groups.router)
    app.include_router(exception_groups.actions)
    app.include_router(keys.router)
    app.include_router(alert_routes.router)
    app.include_router(alert_routes.actions)
    app.include_router(health.router)

    def any_key(request: Request) -> None:
        """With keys configured, any known key (of any role) may read the API's description."""
        request.app.state.collector.keys.authenticate(request.headers.get("authorization"))

    described = [Depends(any_key)]

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=described)
    async def openapi() -> Response:
        return http_errors.json_response(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=described)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} - Swagger UI")

    @app.get("/redoc", include_in_schema=False, dependencies=described)
    async def redoc() -> Response:
        return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{app.title} - ReDoc")

    return app
