"""Dashboard settings from ``THREADLINE_*`` variables (``dashboard/config.py``), options on top."""

from __future__ import annotations

import pytest

from tests.support.settings import Reads, assert_reads_every_variable, refusal
from threadline.dashboard.config import DashboardSettings
from threadline.settings import SettingsError

SECRET = "s" * 32
READS: Reads = {
    "THREADLINE_DASHBOARD_HOST": ("0.0.0.0", "host", "0.0.0.0"),
    "THREADLINE_DASHBOARD_PORT": ("8060", "port", 8060),
    "THREADLINE_API": ("http://collector:4318/", "api", "http://collector:4318"),
    "THREADLINE_API_KEY": ("read-key", "api_key", "read-key"),
    "THREADLINE_DASHBOARD_BASE_PATH": ("threadline", "base_path", "/threadline/"),
    "THREADLINE_OIDC_ISSUER": (
        "https://sso.example.com/realms/acme/",
        "oidc_issuer",
        "https://sso.example.com/realms/acme",
    ),
    "THREADLINE_OIDC_CLIENT_ID": ("threadline", "oidc_client_id", "threadline"),
    "THREADLINE_OIDC_CLIENT_SECRET": ("client-secret", "oidc_client_secret", "client-secret"),
    "THREADLINE_OIDC_ROLES_CLAIM": ("groups", "oidc_roles_claim", "groups"),
    "THREADLINE_OIDC_TENANT_CLAIM": ("org", "oidc_tenant_claim", "org"),
    "THREADLINE_SESSION_SECRET": (SECRET, "session_secret", SECRET),
    "THREADLINE_SESSION_HOURS": ("0.5", "session_hours", 0.5),
    "THREADLINE_OPERATOR_API_KEY": ("act-key", "operator_api_key", "act-key"),
    "THREADLINE_ADMIN_API_KEY": ("admin-key", "admin_api_key", "admin-key"),
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


def test_without_an_issuer_nobody_signs_in(environment: pytest.MonkeyPatch) -> None:
    settings = DashboardSettings.from_environment()
    assert (settings.sign_in, settings.session_hours, settings.oidc_roles_claim) == (False, 8.0, "roles")


def test_sign_in_without_its_client_or_session_secret_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("THREADLINE_OIDC_ISSUER", "https://sso.example.com")
    environment.setenv("THREADLINE_OIDC_CLIENT_ID", "threadline")
    with pytest.raises(
        SettingsError,
        match=r"^THREADLINE_OIDC_ISSUER is set, so sign-in is on, and it needs "
        r"THREADLINE_OIDC_CLIENT_SECRET, THREADLINE_SESSION_SECRET$",
    ):
        DashboardSettings.from_environment()
    environment.setenv("THREADLINE_OIDC_CLIENT_SECRET", "client-secret")
    environment.setenv("THREADLINE_SESSION_SECRET", "short")
    with pytest.raises(SettingsError, match=r"^THREADLINE_SESSION_SECRET: expected at least 32 characters"):
        DashboardSettings.from_environment()
    environment.setenv("THREADLINE_SESSION_SECRET", SECRET)
    assert DashboardSettings.from_environment().sign_in


@pytest.mark.parametrize(("given", "path"), [("/", "/"), ("threadline", "/threadline/"), ("/a/b/", "/a/b/")])
def test_the_base_path_is_a_path_with_its_slashes(
    environment: pytest.MonkeyPatch, given: str, path: str
) -> None:
    assert DashboardSettings.from_environment(base_path=given).base_path == path


def test_a_base_path_that_is_not_a_path_is_refused(environment: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        SettingsError, match=r"^--base-path='/a\?b': expected a URL path such as /threadline/$"
    ):
        DashboardSettings.from_environment(base_path="/a?b")
