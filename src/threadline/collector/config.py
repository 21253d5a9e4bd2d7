"""Collector settings: command-line options override ``THREADLINE_*`` variables override defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .storage import DEFAULT_DSN
from .storage.connection import DEFAULT_READ_TIMEOUT_S
from .workflows import parse_duration

# The example definitions ship as package data, so an installed wheel runs the demo without a
# checkout. Wheels install as files, so the resource has a path for the collector to re-read.
EXAMPLE_WORKFLOWS = Path(str(resources.files("threadline.collector").joinpath("workflows.example.yaml")))


@dataclass(frozen=True)
class CollectorSettings:
    store: str = DEFAULT_DSN
    workflows: Path = EXAMPLE_WORKFLOWS
    host: str = "127.0.0.1"
    port: int = 4318
    max_body_bytes: int = 16 * 1024 * 1024
    batch_window_s: float = 0.005
    max_pending_events: int = 200_000
    cluster: str | None = None
    ttl_days: int | None = None
    api_keys: Path | None = None
    redact_keys: tuple[str, ...] = ()
    redact_salt: str = "threadline"
    backfill: bool = True  # fill the aggregates with an older store's events (storage/backfill.py)
    # How far ahead of the collector's clock an event time may be: a sender's clock drifts by
    # seconds, a wrong time zone by hours. 10 minutes, as Grafana Loki and Mimir allow samples.
    max_future_skew_s: float = 600.0
    # How long a client may take to send its request (collector/timeouts.py): the request line and
    # headers within 20 s, as Apache's mod_reqtimeout allows by default (Go's ReadHeaderTimeout is
    # commonly a few seconds); the body within 20 s plus one second per 500 bytes (mod_reqtimeout's
    # body=20,MinRate=500).
    header_timeout_s: float = 20.0
    body_timeout_s: float = 20.0
    body_min_rate: float = 500.0
    # A read statement's time limit (ClickHouse's max_execution_time). Writes have none.
    # Below the dashboard's 15 s request timeout, so no read outlives the page that asked for it.
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    # API calls of one tenant running at once, and waiting for a turn; beyond, 429 at once.
    reads_per_tenant: int = 4
    reads_waiting_per_tenant: int = 16
    reads_per_second_per_tenant: float = 50.0  # ten seconds' worth in a burst; 0: no limit
    # An API answer that took this long is shared with the same call for this long (shared_reads.py);
    # 0: every call is answered afresh.
    shared_read_s: float = 30.0
    shared_read_min_cost_s: float = 1.0

    @classmethod
    def from_environment(cls, **overrides: Any) -> CollectorSettings:
        env = os.environ
        settings = cls(
            store=env.get("THREADLINE_STORE", DEFAULT_DSN),
            workflows=Path(env.get("THREADLINE_WORKFLOWS", str(EXAMPLE_WORKFLOWS))),
            host=env.get("THREADLINE_HOST", "127.0.0.1"),
            port=int(env.get("THREADLINE_PORT", "4318")),
            max_body_bytes=int(env.get("THREADLINE_MAX_BODY_BYTES", str(16 * 1024 * 1024))),
            batch_window_s=float(env.get("THREADLINE_BATCH_WINDOW_MS", "5")) / 1000,
            max_pending_events=int(env.get("THREADLINE_MAX_PENDING_EVENTS", "200000")),
            cluster=env.get("THREADLINE_CLUSTER") or None,
            ttl_days=int(env["THREADLINE_TTL_DAYS"]) if env.get("THREADLINE_TTL_DAYS") else None,
            api_keys=Path(env["THREADLINE_API_KEYS"]) if env.get("THREADLINE_API_KEYS") else None,
            redact_keys=tuple(
                k.strip() for k in env.get("THREADLINE_REDACT_KEYS", "").split(",") if k.strip()
            ),
            redact_salt=env.get("THREADLINE_REDACT_SALT") or "threadline",
            backfill=env.get("THREADLINE_BACKFILL", "on").lower() not in ("off", "0", "false"),
            max_future_skew_s=_duration(env, "THREADLINE_MAX_FUTURE_SKEW", cls.max_future_skew_s),
            header_timeout_s=_duration(env, "THREADLINE_HEADER_TIMEOUT", cls.header_timeout_s),
            body_timeout_s=_duration(env, "THREADLINE_BODY_TIMEOUT", cls.body_timeout_s),
            body_min_rate=_positive(env, "THREADLINE_BODY_MIN_RATE", cls.body_min_rate),
            read_timeout_s=_duration(env, "THREADLINE_READ_TIMEOUT", cls.read_timeout_s),
            reads_per_tenant=_count(env, "THREADLINE_READS_PER_TENANT", cls.reads_per_tenant),
            reads_waiting_per_tenant=_count(
                env, "THREADLINE_READS_WAITING_PER_TENANT", cls.reads_waiting_per_tenant
            ),
            reads_per_second_per_tenant=_positive_or_off(
                env, "THREADLINE_READS_PER_SECOND_PER_TENANT", cls.reads_per_second_per_tenant
            ),
            shared_read_s=_duration_or_off(env, "THREADLINE_SHARED_READ_SECONDS", cls.shared_read_s),
            shared_read_min_cost_s=_duration_or_off(
                env, "THREADLINE_SHARED_READ_MIN_SECONDS", cls.shared_read_min_cost_s
            ),
        )
        return replace(settings, **{key: value for key, value in overrides.items() if value is not None})


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds in variable ``name``, written as the workflow file writes durations (``90``, ``15m``)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _duration_or_off(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration, or 0 (``0`` or ``off``)."""
    return 0.0 if env.get(name, "").strip().lower() in ("0", "off") else _duration(env, name, default)


def _positive_or_off(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number, or 0 (``0`` or ``off``)."""
    return 0.0 if env.get(name, "").strip().lower() in ("0", "off") else _positive(env, name, default)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number in variable ``name``."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}: expected a positive number, not {text!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number in variable ``name``, at least 1."""
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}: expected a whole number of at least 1, got {text!r}")
    return int(text)
