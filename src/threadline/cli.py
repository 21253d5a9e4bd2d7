"""The ``threadline`` command: ``collector``, ``dashboard``, ``simulate``, ``replay``, ``demo``,
``backup``, ``restore``.

Each is described in README, "Quick start"; docs/architecture.md, "Components", says what each runs.
"""

from __future__ import annotations

import datetime as dt
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


StoreOption = Annotated[
    str | None,
    typer.Option(
        envvar="THREADLINE_STORE",
        help="chdb://DIR (embedded; the collector stopped) or http://host:8123/db [default: the collector's]",
    ),
]


@app.command()
def backup(
    destination: Annotated[
        str, typer.Argument(help="A new directory (embedded), or disk:NAME:PATH or s3:URL (a server)")
    ],
    store: StoreOption = None,
) -> None:
    """Back the whole store up with ClickHouse's BACKUP (README, "Running it for years")."""
    _backup_or_restore("backup", store, destination)


@app.command()
def restore(
    source: Annotated[str, typer.Argument(help="A backup made by `threadline backup`")],
    store: StoreOption = None,
) -> None:
    """Restore a backup into an empty store with ClickHouse's RESTORE; the collector then opens it."""
    _backup_or_restore("restore", store, source)


def _backup_or_restore(command: str, dsn: str | None, where: str) -> None:
    from threadline.collector.storage import DEFAULT_DSN, StoreUnavailable, UnsupportedStore, backups

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    action = backups.backup if command == "backup" else backups.restore
    try:
        typer.echo(action(dsn or DEFAULT_DSN, where))
    except (UnsupportedStore, backups.BackupError) as error:
        _refuse(command, error)
    except StoreUnavailable as error:  # another process holds it, or the server refused: one line
        typer.echo(f"threadline {command}: {str(error).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


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
    base_path: Annotated[
        str | None,
        typer.Option(
            help="URL path behind a reverse proxy, e.g. /threadline/ [env THREADLINE_DASHBOARD_BASE_PATH]"
        ),
    ] = None,
) -> None:
    """Run the dashboard (served by gunicorn): overview, queue, transactions, process maps, systems, alerts.

    People sign in with OpenID Connect when THREADLINE_OIDC_ISSUER is set (README, Security)."""
    from threadline.dashboard.app import run
    from threadline.dashboard.config import DashboardSettings
    from threadline.settings import SettingsError

    try:
        settings = DashboardSettings.from_environment(
            port=port, api=api, api_key=api_key, host=host, base_path=base_path
        )
    except SettingsError as error:
        _refuse("dashboard", error)
    where = f"http://{settings.host}:{settings.port}{settings.base_path}"
    typer.echo(f"Threadline dashboard on {where} (API {settings.api})")
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


@app.command()
def backtest(
    log: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="An XES log (.gz too) to replay")
    ] = None,
    simulated: Annotated[
        float | None, typer.Option(help="Days of the simulator's history to replay instead of a log")
    ] = None,
    workflows: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Workflow definitions (their SLAs)")
    ] = None,
    workflow: Annotated[str | None, typer.Option(help="A log's workflow (default: the log's name)")] = None,
    per_day: Annotated[float, typer.Option(help="Simulated transactions a day")] = 400.0,
    seed: Annotated[int, typer.Option(help="The simulator's seed")] = 7,
    cuts: Annotated[int, typer.Option(min=1, help="Moments the ETAs are measured at")] = 48,
    breach_moments: Annotated[
        int, typer.Option(min=1, help="At most this many moments the breaches are judged at")
    ] = 150,
    lead: Annotated[
        str, typer.Option(help="How long before the deadline a breach must be predicted")
    ] = "30m",
    window: Annotated[
        str, typer.Option(help="How far back the model learns (THREADLINE_FORECAST_WINDOW)")
    ] = "7d",
) -> None:
    """Replay history and measure the forecasts against what happened: ETA error against the naive
    baseline, breach precision and recall at a lead."""
    from threadline import backtest as measure
    from threadline.collector.workflows import WorkflowError, load, parse_duration
    from threadline.replay import ReplayError
    from threadline.simulator.run import default_workflows

    if (log is None) == (simulated is None):
        _refuse("backtest", ValueError("give exactly one of --log FILE and --simulated DAYS"))
    try:
        definitions = load(workflows or default_workflows())
        lead_s, window_s = parse_duration(lead), parse_duration(window)
    except (WorkflowError, ValueError) as error:
        _refuse("backtest", error)
    if log is not None:
        events = measure.log_events(log, workflow)
    else:
        end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0).timestamp()
        events = measure.simulated_events(definitions, simulated or 0, per_day, seed, end)
    try:
        figures = measure.run(events, definitions, cuts, lead_s, window_s, lead_s / 3, breach_moments)
    except ReplayError as error:
        _refuse("backtest", error)
    typer.echo(figures.report(lead_s))
