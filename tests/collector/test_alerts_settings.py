"""Alerting settings from ``THREADLINE_ALERT_*`` and ``THREADLINE_DASHBOARD_URL`` (``alerts/settings.py``)."""

from __future__ import annotations

import pytest

from tests.support.settings import Reads, assert_reads_every_variable, refusal
from threadline.collector.alerts.settings import AlertSettings

READS: Reads = {
    "THREADLINE_ALERT_INTERVAL": ("0", "interval", 0.0),
    "THREADLINE_ALERT_DRIFT_INTERVAL": ("60", "drift_interval", 60.0),
    "THREADLINE_ALERT_RETRY_SECONDS": ("2", "retry_seconds", 2.0),
    "THREADLINE_ALERT_RETRY_MAX_SECONDS": ("20", "retry_max_seconds", 20.0),
    "THREADLINE_ALERT_MAX_ATTEMPTS": ("3", "max_attempts", 3),
    "THREADLINE_ALERT_TIMEOUT": ("1.5", "timeout", 1.5),
    "THREADLINE_DASHBOARD_URL": (
        "https://threadline.example/",
        "dashboard_url",
        "https://threadline.example",
    ),
}


def test_every_setting_is_read_from_its_variable(environment: pytest.MonkeyPatch) -> None:
    assert_reads_every_variable(AlertSettings, READS, environment)
    assert not AlertSettings.from_environment().enabled  # an interval of 0 turns alerting off


def test_without_variables_alerts_are_evaluated_every_30_seconds(environment: pytest.MonkeyPatch) -> None:
    settings = AlertSettings.from_environment()
    assert settings.enabled and settings.interval == 30
    assert settings.dashboard_url == "http://localhost:8050"


def test_retries_back_off_exponentially_up_to_a_bound(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("THREADLINE_ALERT_RETRY_SECONDS", "2")
    environment.setenv("THREADLINE_ALERT_RETRY_MAX_SECONDS", "20")
    settings = AlertSettings.from_environment()

    assert [settings.backoff_s(n) for n in range(1, 7)] == [2, 4, 8, 16, 20, 20]


@pytest.mark.parametrize(
    ("variable", "text", "reason"),
    [
        ("THREADLINE_ALERT_INTERVAL", "soon", "expected a number"),
        ("THREADLINE_ALERT_INTERVAL", "-1", "expected at least 0"),
        ("THREADLINE_ALERT_INTERVAL", "0.05", "expected 0 (no alerting) or at least 0.1 seconds"),
        ("THREADLINE_ALERT_DRIFT_INTERVAL", "-5", "expected at least 0"),
        ("THREADLINE_ALERT_RETRY_SECONDS", "0", "expected at least 0.01"),
        ("THREADLINE_ALERT_MAX_ATTEMPTS", "2.5", "expected a whole number"),
        ("THREADLINE_ALERT_TIMEOUT", "inf", "expected a finite number"),
        ("THREADLINE_DASHBOARD_URL", "dashboard:8050", "expected an http:// or https:// URL"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_the_value_and_the_reason(
    environment: pytest.MonkeyPatch, variable: str, text: str, reason: str
) -> None:
    assert refusal(AlertSettings, environment, variable, text) == f"{variable}={text!r}: {reason}"
