"""Dashboard settings: command-line options override ``THREADLINE_*`` variables override defaults.

Read by pydantic-settings (``threadline/settings.py``): ``THREADLINE_DASHBOARD_HOST`` and
``THREADLINE_DASHBOARD_PORT`` (the dashboard's own), ``THREADLINE_API`` and ``THREADLINE_API_KEY``
(the collector it reads, and the key it reads with, as the command line's other clients name them).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings

from threadline.settings import config, http_url, read

DEFAULT_API = "http://127.0.0.1:4318"
DEFAULT_PORT = 8050


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

    @classmethod
    def from_environment(cls, **options: Any) -> DashboardSettings:
        """The variables, with the command line's ``options`` (None: not given) on top.

        Raises SettingsError naming the variable or option, the value and the reason."""
        return read(cls, **options)
