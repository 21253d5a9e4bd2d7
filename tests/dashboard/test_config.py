"""Dashboard settings from ``THREADLINE_*`` variables (``dashboard/config.py``), options on top."""

from __future__ import annotations

import pytest

from tests.support.settings import Reads, assert_reads_every_variable, refusal
from threadline.dashboard.config import DashboardSettings
from threadline.settings import SettingsError

READS: Reads = {
    "THREADLINE_DASHBOARD_HOST": ("0.0.0.0", "host", "0.0.0.0"),
    "THREADLINE_DASHBOARD_PORT": ("8060", "port", 8060),
    "THREADLINE_API": ("http://collector:4318/", "api", "http://collector:4318"),
    "THREADLINE_API_KEY": ("read-key", "api_key", "read-key"),
}


def test_every_setting_is_read_from_its_variable(environment: pytest.MonkeyPatch) -> None:
    assert_reads_every_variable(DashboardSettings, READS, environment)


def test_without_variables_it_reads_the_local_collector_on_loopback(environment: pytest.MonkeyPatch) -> None:
    settings = DashboardSettings.from_environment()
    assert (settings.host, settings.port, settings.api, settings.api_key) == (
        "127.0.0.1",
        8050,
        "http://127.0.0.1:4318",
        None,
    )


def test_options_override_the_variables_and_are_validated_the_same_way(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("THREADLINE_API", "http://collector:4318")
    environment.setenv("THREADLINE_API_KEY", "from-the-environment")

    settings = DashboardSettings.from_environment(api="http://other:4318", api_key=None, port=9000)

    assert (settings.api, settings.api_key, settings.port) == (
        "http://other:4318",
        "from-the-environment",
        9000,
    )
    with pytest.raises(SettingsError, match=r"^--api='other:4318': expected an http:// or https:// URL$"):
        DashboardSettings.from_environment(api="other:4318")


@pytest.mark.parametrize(
    ("variable", "text", "reason"),
    [
        ("THREADLINE_DASHBOARD_PORT", "web", "expected a whole number"),
        ("THREADLINE_DASHBOARD_PORT", "-1", "expected at least 0"),
        ("THREADLINE_API", "collector:4318", "expected an http:// or https:// URL"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_the_value_and_the_reason(
    environment: pytest.MonkeyPatch, variable: str, text: str, reason: str
) -> None:
    assert refusal(DashboardSettings, environment, variable, text) == f"{variable}={text!r}: {reason}"
