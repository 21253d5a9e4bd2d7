"""Collector settings from ``THREADLINE_*`` variables (``collector/config.py``), options on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.settings import Reads, assert_reads_every_variable, refusal
from threadline.collector.config import EXAMPLE_WORKFLOWS, CollectorSettings
from threadline.collector.storage import DEFAULT_DSN
from threadline.settings import SettingsError

READS: Reads = {
    "THREADLINE_STORE": ("http://ch:8123", "store", "http://ch:8123"),
    "THREADLINE_WORKFLOWS": (
        "/etc/threadline/workflows.yaml",
        "workflows",
        Path("/etc/threadline/workflows.yaml"),
    ),
    "THREADLINE_HOST": ("0.0.0.0", "host", "0.0.0.0"),
    "THREADLINE_PORT": ("9000", "port", 9000),
    "THREADLINE_API_KEYS": ("keys.yaml", "api_keys", Path("keys.yaml")),
    "THREADLINE_WEBHOOKS": ("webhooks.yaml", "webhooks", Path("webhooks.yaml")),
    "THREADLINE_MAX_BODY_BYTES": ("1024", "max_body_bytes", 1024),
    "THREADLINE_BATCH_WINDOW_MS": ("20", "batch_window_ms", 20.0),
    "THREADLINE_MAX_PENDING_EVENTS": ("1000", "max_pending_events", 1000),
    "THREADLINE_CLUSTER": ("prod", "cluster", "prod"),
    "THREADLINE_TTL_DAYS": ("30", "ttl_days", 30),
    "THREADLINE_RETENTION_DAYS": ("default=90, acme=30,", "retention_days", {"default": 90, "acme": 30}),
    "THREADLINE_REDACT_KEYS": ("iban, tax_id,,", "redact_keys", ("iban", "tax_id")),
    "THREADLINE_REDACT_SALT": ("pepper", "redact_salt", "pepper"),
    "THREADLINE_BACKFILL": ("off", "backfill", False),
    "THREADLINE_STATE_INTERVAL": ("30s", "state_interval", 30.0),
    "THREADLINE_FORECAST_WINDOW": ("3d", "forecast_window", 3 * 86400.0),
    "THREADLINE_FORECAST_INTERVAL": ("10m", "forecast_interval", 600.0),
    "THREADLINE_MAX_FUTURE_SKEW": ("15m", "max_future_skew", 900.0),
    "THREADLINE_HEADER_TIMEOUT": ("5s", "header_timeout", 5.0),
    "THREADLINE_BODY_TIMEOUT": ("1m", "body_timeout", 60.0),
    "THREADLINE_BODY_MIN_RATE": ("100", "body_min_rate", 100.0),
    "THREADLINE_READ_TIMEOUT": ("2.5", "read_timeout", 2.5),
    "THREADLINE_READ_CONNECTIONS": ("5", "read_connections", 5),
    "THREADLINE_READS_PER_TENANT": ("8", "reads_per_tenant", 8),
    "THREADLINE_READS_WAITING_PER_TENANT": ("32", "reads_waiting_per_tenant", 32),
    "THREADLINE_READS_PER_SECOND_PER_TENANT": ("off", "reads_per_second_per_tenant", 0.0),
    "THREADLINE_SHARED_READ_SECONDS": ("0", "shared_read_seconds", 0.0),
    "THREADLINE_SHARED_READ_MIN_SECONDS": ("1h30m", "shared_read_min_seconds", 5400.0),
}


def test_every_setting_is_read_from_its_variable(environment: pytest.MonkeyPatch) -> None:
    assert_reads_every_variable(CollectorSettings, READS, environment)


def test_without_variables_the_defaults_hold(environment: pytest.MonkeyPatch) -> None:
    settings = CollectorSettings.from_environment()
    assert (settings.store, settings.workflows, settings.host, settings.port) == (
        DEFAULT_DSN,
        EXAMPLE_WORKFLOWS,
        "127.0.0.1",
        4318,
    )
    assert (settings.max_future_skew, settings.read_timeout, settings.shared_read_seconds) == (
        600.0,
        10.0,
        30.0,
    )
    assert settings.backfill and settings.cluster is None and settings.redact_keys == ()


def test_an_empty_variable_is_an_unset_one(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("THREADLINE_CLUSTER", "")
    environment.setenv("THREADLINE_PORT", "")
    settings = CollectorSettings.from_environment()
    assert settings.cluster is None and settings.port == 4318


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("15m", 900.0), ("1h30m", 5400.0)])
def test_the_future_skew_reads_as_the_workflow_file_s_durations(
    environment: pytest.MonkeyPatch, text: str, seconds: float
) -> None:
    environment.setenv("THREADLINE_MAX_FUTURE_SKEW", text)
    assert CollectorSettings.from_environment().max_future_skew == seconds


@pytest.mark.parametrize(
    ("variable", "text", "reason"),
    [
        ("THREADLINE_PORT", "abc", "expected a whole number"),
        ("THREADLINE_PORT", "70000", "expected at most 65535"),
        ("THREADLINE_MAX_PENDING_EVENTS", "0", "expected at least 1"),
        ("THREADLINE_TTL_DAYS", "0", "expected at least 1"),
        ("THREADLINE_RETENTION_DAYS", "acme=0", "expected TENANT=DAYS, DAYS a whole number above 0"),
        ("THREADLINE_RETENTION_DAYS", "acme", "expected TENANT=DAYS, DAYS a whole number above 0"),
        ("THREADLINE_BACKFILL", "maybe", "expected on or off"),
        ("THREADLINE_READ_TIMEOUT", "soon", "expected a number of seconds or a duration like 90s, 15m"),
        ("THREADLINE_MAX_FUTURE_SKEW", "-5m", "expected a number of seconds or a duration like 90s, 15m"),
        ("THREADLINE_HEADER_TIMEOUT", "0", "must be more than 0 seconds and finite"),
        ("THREADLINE_BODY_MIN_RATE", "0", "expected more than 0"),
        ("THREADLINE_BODY_MIN_RATE", "nan", "expected a finite number"),
        ("THREADLINE_READS_PER_TENANT", "2.5", "expected a whole number"),
        ("THREADLINE_READS_PER_SECOND_PER_TENANT", "-1", "expected at least 0"),
        ("THREADLINE_SHARED_READ_SECONDS", "never", "expected a number of seconds or a duration"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_the_value_and_the_reason(
    environment: pytest.MonkeyPatch, variable: str, text: str, reason: str
) -> None:
    assert refusal(CollectorSettings, environment, variable, text).startswith(
        f"{variable}={text!r}: {reason}"
    )


def test_options_override_the_variables_and_are_validated_the_same_way(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("THREADLINE_PORT", "9000")
    environment.setenv("THREADLINE_HOST", "0.0.0.0")
    options: dict[str, Any] = {"port": 9100, "host": None}  # None: the option was not given

    settings = CollectorSettings.from_environment(**options)

    assert (settings.port, settings.host) == (9100, "0.0.0.0")
    with pytest.raises(SettingsError, match=r"^--port=70000: expected at most 65535$"):
        CollectorSettings.from_environment(port=70000)
    environment.setenv("THREADLINE_PORT", "abc")  # overridden, so never read
    assert CollectorSettings.from_environment(port=9100).port == 9100


def test_every_bad_value_is_named_in_one_line(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("THREADLINE_PORT", "abc")
    environment.setenv("THREADLINE_BACKFILL", "maybe")
    with pytest.raises(SettingsError) as refused:
        CollectorSettings.from_environment()
    assert (
        str(refused.value)
        == "THREADLINE_PORT='abc': expected a whole number; THREADLINE_BACKFILL='maybe': expected on or off"
    )
