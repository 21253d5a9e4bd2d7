"""Dashboard settings: command-line options override ``THREADLINE_*`` variables override defaults.

Read by pydantic-settings (``threadline/settings.py``): ``THREADLINE_DASHBOARD_HOST`` and
``THREADLINE_DASHBOARD_PORT`` (the dashboard's own), ``THREADLINE_API`` and ``THREADLINE_API_KEY``
(the collector it reads, and the key it reads with, as the command line's other clients name them).

Sign-in (signin.py) is on when ``THREADLINE_OIDC_ISSUER`` is set: people then sign in at that OpenID
provider, and the dashboard reads with ``THREADLINE_API_KEY`` for viewers and with the operators' and
admins' own keys (``THREADLINE_OPERATOR_API_KEY``, ``THREADLINE_ADMIN_API_KEY``) for them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings

from threadline.settings import SettingsError, config, http_url, read

DEFAULT_API = "http://127.0.0.1:4318"
DEFAULT_PORT = 8050
MIN_SECRET_CHARS = 32  # the session cookie's signing key: guessing it forges any person


def url_path(value: str) -> str:
    """A URL path the dashboard is served under behind a proxy, as ``/threadline/`` (slashes added)."""
    path = value.strip().strip("/")
    if any(char in path for char in "?#\\ ") or "//" in path:
        raise ValueError("expected a URL path such as /threadline/")
    return f"/{path}/" if path else "/"


class DashboardSettings(BaseSettings):
    model_config = config("THREADLINE_DASHBOARD_")

    host: str = Field(default="127.0.0.1", description="the interface to listen on (0.0.0.0 in a container)")
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="the port to listen on")
    api: Annotated[str, AfterValidator(http_url)] = Field(
        default=DEFAULT_API, validation_alias="THREADLINE_API", description="the collector's base URL"
    )
    api_key: str | None = Field(
        default=None,
        validation_alias="THREADLINE_API_KEY",
        description="bearer key with the read role (and act, to act from the dashboard)",
    )
    base_path: Annotated[str, AfterValidator(url_path)] = Field(
        default="/", description="the URL path it is served under behind a reverse proxy"
    )
    # Sign-in with OpenID Connect (signin.py); off while no issuer is set.
    oidc_issuer: Annotated[str, AfterValidator(http_url)] | None = Field(
        default=None,
        validation_alias="THREADLINE_OIDC_ISSUER",
        description="the OpenID provider (its /.well-known/openid-configuration is read)",
    )
    oidc_client_id: str | None = Field(
        default=None,
        validation_alias="THREADLINE_OIDC_CLIENT_ID",
        description="the dashboard's client id at the OpenID provider",
    )
    oidc_client_secret: str | None = Field(
        default=None,
        validation_alias="THREADLINE_OIDC_CLIENT_SECRET",
        description="the dashboard's client secret at the OpenID provider",
    )
    oidc_roles_claim: str = Field(
        default="roles",
        validation_alias="THREADLINE_OIDC_ROLES_CLAIM",
        description="the ID token claim listing the person's roles (viewer, operator, admin)",
    )
    oidc_tenant_claim: str = Field(
        default="tenant",
        validation_alias="THREADLINE_OIDC_TENANT_CLAIM",
        description="the ID token claim naming the person's tenant",
    )
    session_secret: str | None = Field(
        default=None,
        validation_alias="THREADLINE_SESSION_SECRET",
        description="signs the session cookie; required with sign-in",
    )
    session_hours: float = Field(
        default=8.0, gt=0, validation_alias="THREADLINE_SESSION_HOURS", description="a session's lifetime"
    )
    operator_api_key: str | None = Field(
        default=None,
        validation_alias="THREADLINE_OPERATOR_API_KEY",
        description="with sign-in: the key (read and act) operators read and act with",
    )
    admin_api_key: str | None = Field(
        default=None,
        validation_alias="THREADLINE_ADMIN_API_KEY",
        description="with sign-in: the key admins use (default: the operators' key)",
    )

    @property
    def sign_in(self) -> bool:
        """Whether people sign in (an OpenID provider is configured)."""
        return self.oidc_issuer is not None

    @classmethod
    def from_environment(cls, **options: Any) -> DashboardSettings:
        """The variables, with the command line's ``options`` (None: not given) on top.

        Raises SettingsError naming the variable or option, the value and the reason, and when sign-in
        is on without what it needs."""
        settings = read(cls, **options)
        if settings.sign_in:
            needed = {
                "THREADLINE_OIDC_CLIENT_ID": settings.oidc_client_id,
                "THREADLINE_OIDC_CLIENT_SECRET": settings.oidc_client_secret,
                "THREADLINE_SESSION_SECRET": settings.session_secret,
            }
            if missing := [name for name, value in needed.items() if not value]:
                raise SettingsError(
                    f"THREADLINE_OIDC_ISSUER is set, so sign-in is on, and it needs {', '.join(missing)}"
                )
            if len(settings.session_secret or "") < MIN_SECRET_CHARS:
                raise SettingsError(
                    f"THREADLINE_SESSION_SECRET: expected at least {MIN_SECRET_CHARS} characters "
                    "(it signs the session cookie; e.g. `openssl rand -hex 32`)"
                )
        return settings
