"""Collector settings: command-line options override ``THREADLINE_*`` variables override defaults.

Each field is the variable ``THREADLINE_<FIELD>`` (README, "Collector settings"); pydantic-settings
reads and validates them (``threadline/settings.py``). The alerting part is its own model,
``alerts/settings.py``, read from ``THREADLINE_ALERT_*``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode

from threadline.contract.redaction import DEFAULT_SALT
from threadline.settings import comma_list, config, read

from .storage import DEFAULT_DSN
from .storage.connection import DEFAULT_READ_CONNECTIONS, DEFAULT_READ_TIMEOUT_S
from .workflows import parse_duration

# The example definitions ship as package data, so an installed wheel runs the demo without a
# checkout. Wheels install as files, so the resource has a path for the collector to re-read.
EXAMPLE_WORKFLOWS = Path(str(resources.files("threadline.collector").joinpath("workflows.example.yaml")))
EXAMPLE_WEBHOOKS = Path(str(resources.files("threadline.collector").joinpath("webhooks.example.yaml")))

OFF = ("0", "off")  # what turns off a setting that may be off


def _duration(value: object) -> float:
    """Seconds, written as the workflows file writes durations (``90``, ``15m``, ``1h30m``)."""
    try:
        return parse_duration(value)
    except ValueError as error:  # its message names the value, which the refusal names already
        raise ValueError(str(error).removeprefix(f"invalid duration {value!r}: ")) from None


def _duration_or_off(value: object) -> float:
    return 0.0 if _is_off(value) else _duration(value)


def _number_or_off(value: object) -> object:
    return 0.0 if _is_off(value) else value


def _is_off(value: object) -> bool:
    return (isinstance(value, str) and value.strip().lower() in OFF) or value == 0


def _days_by_tenant(value: object) -> object:
    """``default=90, acme=30`` as {"default": 90, "acme": 30} (whole days, each above 0)."""
    if not isinstance(value, str):
        return value
    days: dict[str, int] = {}
    for entry in filter(None, (item.strip() for item in value.split(","))):
        tenant, equals, count = (part.strip() for part in entry.partition("="))
        if not equals or not tenant or not count.isdigit() or int(count) < 1:
            raise ValueError(f"expected TENANT=DAYS, DAYS a whole number above 0, not {entry!r}")
        days[tenant] = int(count)
    return days


Seconds = Annotated[float, BeforeValidator(_duration)]
SecondsOrOff = Annotated[float, Field(ge=0), BeforeValidator(_duration_or_off)]


class CollectorSettings(BaseSettings):
    model_config = config("THREADLINE_")

    store: str = Field(
        default=DEFAULT_DSN, description="chdb://DIR (embedded) or http(s)://host:8123 (README, Storage)"
    )
    workflows: Path = Field(default=EXAMPLE_WORKFLOWS, description="workflow definitions and alert rules")
    webhooks: Path | None = Field(
        default=None, description="webhook mappings: SaaS senders' bodies into events (README, Webhooks)"
    )
    host: str = Field(default="127.0.0.1", description="the interface to listen on")
    port: int = Field(default=4318, ge=0, le=65535, description="the port to listen on (0: any free one)")
    api_keys: Path | None = Field(default=None, description="the API keys file (README, Security)")
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, description="largest request body, decompressed"
    )
    batch_window_ms: float = Field(
        default=5.0, ge=0, description="how long a write waits to share a store insert with others"
    )
    max_pending_events: int = Field(
        default=200_000, ge=1, description="events waiting for the store before new requests get 503"
    )
    cluster: str | None = Field(default=None, description="the ClickHouse cluster (README, Storage)")
    ttl_days: int | None = Field(
        default=None, ge=1, description="days data is kept, for every tenant RETENTION_DAYS names not"
    )
    retention_days: Annotated[dict[str, int], NoDecode, BeforeValidator(_days_by_tenant)] = Field(
        default_factory=dict,
        description="days each tenant's data is kept: default=90,acme=30 (README, Running it for years)",
    )
    redact_keys: Annotated[tuple[str, ...], NoDecode, BeforeValidator(comma_list)] = Field(
        default=(), description="attribute keys hashed on top of the built-in list (comma-separated)"
    )
    redact_salt: str = Field(default=DEFAULT_SALT, description="salt of redacted values")
    backfill: bool = Field(
        default=True, description="fill the aggregates with an older store's events (storage/backfill.py)"
    )
    # How often the state snapshot is brought up to date (state/snapshot.py): a read derives again
    # what changed since, so this bounds a read's extra work, not what it sees.
    state_interval: SecondsOrOff = Field(
        default=2.0, description="seconds between passes of the state snapshot's keeper (0: no snapshot)"
    )
    # Forecasts (state/forecast.py) learn from the transactions completed recently: a window of a week
    # holds enough of each workflow's positions, and is read again every few minutes off the request path.
    forecast_window: Seconds = Field(
        default=7 * 86400.0, gt=0, description="how far back forecasts learn from completed transactions"
    )
    forecast_interval: SecondsOrOff = Field(
        default=300.0, description="seconds between refreshes of the forecast models (0: learned once)"
    )
    # How far ahead of the collector's clock an event time may be: a sender's clock drifts by
    # seconds, a wrong time zone by hours. 10 minutes, as Grafana Loki and Mimir allow samples.
    max_future_skew: Seconds = Field(default=600.0, description="how far ahead an event time may be, seconds")
    # How long a client may take to send its request (collector/timeouts.py): the request line and
    # headers within 20 s, as Apache's mod_reqtimeout allows by default (Go's ReadHeaderTimeout is
    # commonly a few seconds); the body within 20 s plus one second per 500 bytes (mod_reqtimeout's
    # body=20,MinRate=500).
    header_timeout: Seconds = Field(default=20.0, description="seconds a request's line and headers may take")
    body_timeout: Seconds = Field(
        default=20.0, description="seconds a request body may take, plus its rate's"
    )
    body_min_rate: float = Field(
        default=500.0, gt=0, allow_inf_nan=False, description="one second more per this many body bytes"
    )
    # Below the dashboard's 15 s request timeout, so no read outlives the page that asked for it.
    read_timeout: Seconds = Field(
        default=DEFAULT_READ_TIMEOUT_S,
        description="a read's time limit (max_execution_time), seconds; writes have none",
    )
    read_connections: int = Field(
        default=DEFAULT_READ_CONNECTIONS,
        ge=1,
        description="store connections for reads, beside the one for writes: queries running at once",
    )
    reads_per_tenant: int = Field(default=4, ge=1, description="API calls of one tenant running at once")
    reads_waiting_per_tenant: int = Field(
        default=16, ge=1, description="more calls of one tenant waiting for a turn"
    )
    reads_per_second_per_tenant: Annotated[float, BeforeValidator(_number_or_off)] = Field(
        default=50.0,
        ge=0,
        allow_inf_nan=False,
        description="API calls of one tenant a second, burst of ten (0: no limit)",
    )
    # An API answer that took this long is shared with the same call for this long (shared_reads.py).
    shared_read_seconds: SecondsOrOff = Field(
        default=30.0, description="how long an expensive answer is shared with the same call (0: never)"
    )
    shared_read_min_seconds: SecondsOrOff = Field(
        default=1.0, description="what counts as expensive, seconds"
    )

    @classmethod
    def from_environment(cls, **options: Any) -> CollectorSettings:
        """The variables, with the command line's ``options`` (None: not given) on top.

        Raises SettingsError naming the variable or option, the value and the reason."""
        return read(cls, **options)
