"""Alerting settings, from ``THREADLINE_ALERT_*`` variables (and ``THREADLINE_DASHBOARD_URL``).

They are read once at start (``threadline/settings.py``). A value that does not validate stops the
start with its variable's name, rather than falling back silently to a schedule nobody asked for.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings

from threadline.settings import config, http_url, read

DEFAULT_DASHBOARD_URL = "http://localhost:8050"


def _off_or_long_enough(interval: float) -> float:
    if 0 < interval < 0.1:
        raise ValueError("expected 0 (no alerting) or at least 0.1 seconds")
    return interval


class AlertSettings(BaseSettings):
    model_config = config("THREADLINE_ALERT_")

    interval: Annotated[float, AfterValidator(_off_or_long_enough)] = Field(
        default=30.0, ge=0, allow_inf_nan=False, description="seconds between evaluations (0: no alerting)"
    )
    drift_interval: float = Field(
        default=300.0,
        ge=0,
        allow_inf_nan=False,
        description="seconds between looks for schema drift (the drifts last found stand meanwhile)",
    )
    retry_seconds: float = Field(
        default=5.0, ge=0.01, allow_inf_nan=False, description="the wait after the first failed delivery"
    )
    retry_max_seconds: float = Field(
        default=600.0, ge=0.01, allow_inf_nan=False, description="the longest wait between delivery attempts"
    )
    max_attempts: int = Field(
        default=12, ge=1, description="delivery attempts, then the notification is given up"
    )
    timeout: float = Field(
        default=10.0, ge=0.1, allow_inf_nan=False, description="seconds one delivery attempt may take"
    )
    dashboard_url: Annotated[str, AfterValidator(http_url)] = Field(
        default=DEFAULT_DASHBOARD_URL,
        validation_alias="THREADLINE_DASHBOARD_URL",
        description="links in the payloads",
    )
    # Transactions listed in one notification (the count is always exact); not a variable.
    max_transactions: ClassVar[int] = 20

    @classmethod
    def from_environment(cls) -> AlertSettings:
        """The variables; raises SettingsError naming the variable, the value and the reason."""
        return read(cls)

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def backoff_s(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failures: doubling from ``retry_seconds``, at most
        ``retry_max_seconds``."""
        return min(self.retry_seconds * 2 ** max(failed_attempts - 1, 0), self.retry_max_seconds)
