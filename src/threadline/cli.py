"""The ``threadline`` command: ``collector``, ``dashboard``, ``simulate``, ``replay``, ``demo``.

Each is described in README, "Quick start"; docs/architecture.md, "Components", says what each runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Business-transaction tracing for integrations."
)


@app.callback()
def main() -> None:
    """Threadline: follow every business transaction across CRM, CPQ, billing, support and ERP."""


def _refuse(command: str, problem: Exception) -> NoReturn:
    """A configuration the command cannot start with: one line naming it on stderr, and the usage-error
    status (2), rather than a traceback from deep inside the start-up."""
    typer.echo(f"threadline {command}: {problem}", err=True)
    raise typer.Exit(2)


@app.command()
def collector(
    port: Annotated[
        int | None, typer.Option(help="Port (OTLP/HTTP standard: 4318) [env THREADLINE_PORT]")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="chdb://DIR (embedded) or http://host:8123 [env THREADLINE_STORE]")
    ] = None,
    workflows: Annotated[
        Path | None, typer.Option(help="Workflow definitions YAML [env THREADLINE_WORKFLOWS]")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [env THREADLINE_HOST]")] = None,
    api_keys: Annotated[
        Path | None, typer.Option(help="API keys YAML: keys, tenants, roles [env THREADLINE_API_KEYS]")
    ] = None,
) -> None:
    """Run the collector: OTLP/HTTP and JSON ingest, query API, /metrics."""
    import uvicorn

    from threadline.collector.alerts.settings import AlertSettings
    from threadline.collector.app import create_app
    from threadline.collector.auth import KeyFileError, load_keys
    from threadline.collector.config import CollectorSettings
    from threadline.collector.ingest.webhooks import WebhookError
    from threadline.collector.ingest.webhooks import load as load_webhooks
    from threadline.collector.storage import UnsupportedStore, normalize_dsn, redact_dsn
    from threadline.collector.timeouts import header_bounded
    from threadline.collector.workflows import WorkflowError, load
    from threadline.settings import SettingsError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # a setting that does not validate: say which, rather than a traceback
        settings = CollectorSettings.from_environment(
            port=port, store=store, workflows=workflows, host=host, api_keys=api_keys
        )
        alerts = AlertSettings.from_environment()
    except SettingsError as error:
        _refuse("collector", error)
    try:  # what the start-up will read, checked before the server starts so a mistake is one line
        load(settings.workflows)
        normalize_dsn(settings.store)
        keys = load_keys(settings.api_keys)
        load_webhooks(settings.webhooks)
    except (WorkflowError, UnsupportedStore, KeyFileError, WebhookError) as error:
        _refuse("collector", error)
    if not keys.enabled and settings.host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"No API keys configured: listening on 127.0.0.1 only, not {settings.host} "
            "(configure --api-keys to accept other machines).",
            err=True,
        )
        settings = settings.model_copy(update={"host": "127.0.0.1"})
    elif not keys.enabled:
        typer.echo("No API keys configured: listening on 127.0.0.1 only, every request is trusted.")
    else:
        typer.echo(f"{len(keys)} API keys configured: every endpoint but /healthz and /readyz needs one.")
    typer.echo(
        f"Threadline collector on http://{settings.host}:{settings.port} (store {redact_dsn(settings.store)})"
    )
    uvicorn.run(
        create_app(settings, alerts),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=header_bounded(settings.header_timeout),
    )


@app.command()
def dashboard(
    port: Annotated[
        int | None, typer.Option(help="Port (Dash's usual: 8050) [env THREADLINE_DASHBOARD_PORT]")
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(help="The collector's base URL [env THREADLINE_API]"),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Bearer key with the read role (and act, to act) [env THREADLINE_API_KEY]"),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface (default 127.0.0.1) [env THREADLINE_DASHBOARD_HOST]")
    ] = None,
) -> None:
    """Run the dashboard: overview, operations queue, transactions, process maps, systems, alerts."""
    from threadline.dashboard.app import run
    from threadline.dashboard.config import DashboardSettings
    from threadline.settings import SettingsError

    try:
        settings = DashboardSettings.from_environment(port=port, api=api, api_key=api_key, host=host)
    except SettingsError as error:
        _refuse("dashboard", error)
    typer.echo(f"Threadline dashboard on http://{settings.host}:{settings.port} (API {settings.api})")
    run(settings)


@app.command()
def simulate(
    endpoint: Annotated[
        str, typer.Option(envvar="OTEL_EXPORTER_OTLP_ENDPOINT", help="The collector")
    ] = "http://localhost:4318",
    rate: Annotated[float, typer.Option(help="New transactions per minute, live")] = 6.0,
    seed: Annotated[int | None, typer.Option(help="The same seed sends the same events")] = None,
    backfill_days: Annotated[float, typer.Option(help="Days of history sent first (0: none)")] = 3.0,
    backfill_per_day: Annotated[float, typer.Option(help="Transactions a day in the history")] = 1000.0,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of live traffic (default: until Ctrl-C)")
    ] = None,
    speed: Annotated[float, typer.Option(help="Live business time runs this many times faster")] = 1.0,
    spool_dir: Annotated[str | None, typer.Option(help="The SDK's spool [env THREADLINE_SPOOL_DIR]")] = None,
    workflows: Annotated[
        Path | None, typer.Option(help="Workflow definitions (default: the example)")
    ] = None,
) -> None:
    """Fake CRM, CPQ, billing, support and ERP integrations sending business events through the SDK."""
    from threadline.collector.workflows import WorkflowError, load
    from threadline.simulator import simulate as run_simulation
    from threadline.simulator.run import default_workflows

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        definitions = load(workflows or default_workflows())
    except WorkflowError as error:
        _refuse("simulate", error)
    stats = run_simulation(
        endpoint,
        rate,
        seed=seed,
        backfill_days=backfill_days,
        duration_s=duration,
        spool_dir=spool_dir,
        speed=speed,
        backfill_per_day=backfill_per_day,
        workflows=definitions,
    )
    typer.echo(stats.summary())
    if not stats.delivered:
        raise typer.Exit(1)


@app.command()
def replay(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, XES or OCEL 2.0 JSON (.gz too)")
    ],
    endpoint: Annotated[
        str, typer.Option(envvar="OTEL_EXPORTER_OTLP_ENDPOINT", help="The collector")
    ] = "http://localhost:4318",
    format: Annotated[str | None, typer.Option(help="csv, xes or ocel (default: from the file name)")] = None,
    map: Annotated[
        list[str] | None,
        typer.Option(
            help="CSV/XES mapping, repeatable: field=column, attribute:name=column, alias:kind=column"
        ),
    ] = None,
    workflow: Annotated[
        str | None, typer.Option(help="The workflow of every event (overrides the file)")
    ] = None,
    system: Annotated[str | None, typer.Option(help="The system of events that name none")] = None,
    object_type: Annotated[
        str | None, typer.Option(help="OCEL: the object type that is the transaction")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of timestamps written without one")] = "UTC",
    api_key: Annotated[
        str | None, typer.Option(envvar="THREADLINE_API_KEY", help="Bearer key (ingest)")
    ] = None,
) -> None:
    """Import a historical event log through the same validation as ingest; bad rows are reported by line."""
    from threadline.replay import ReplayError, format_report, mapping_from_args
    from threadline.replay import replay as run_replay

    try:
        report = run_replay(
            file,
            endpoint,
            format=format,
            mapping=mapping_from_args(map or ()),
            workflow=workflow,
            system=system,
            object_type=object_type,
            api_key=api_key,
            timezone=timezone,
        )
    except ReplayError as error:
        typer.echo(f"threadline replay: {error}", err=True)
        if error.report is not None:
            typer.echo(format_report(error.report), err=True)
        raise typer.Exit(2) from None
    typer.echo(format_report(report))
    if report.rejected_rows:
        raise typer.Exit(1)


@app.command()
def demo(
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds [env THREADLINE_DEMO_SECONDS]")
    ] = None,
    rate: Annotated[float, typer.Option(help="Live transactions per minute")] = 30.0,
    seed: Annotated[int, typer.Option(help="The simulator's seed")] = 7,
) -> None:
    """Collector + dashboard + simulator on a fresh embedded store (ports 4318 and 8050)."""
    from threadline.collector.workflows import WorkflowError, load
    from threadline.demo import DemoError, DemoSettings, check_children_settings, run
    from threadline.settings import SettingsError
    from threadline.simulator.run import default_workflows

    try:  # the demo's children read its environment (THREADLINE_WORKFLOWS too): a bad one stops it here
        settings = DemoSettings.from_environment(seconds=seconds)
        check_children_settings()
        load(default_workflows())
    except (SettingsError, WorkflowError) as error:
        _refuse("demo", error)
    try:
        run(seconds=settings.seconds, rate=rate, seed=seed)
    except DemoError as error:
        typer.echo(f"threadline demo: {error}", err=True)
        raise typer.Exit(1) from None
