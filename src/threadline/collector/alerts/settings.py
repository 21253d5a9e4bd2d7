"""Alerting settings, from ``THREADLINE_ALERT_*`` variables (and ``THREADLINE_DASHBOARD_URL``).

They are read once at start. A value that is not a number stops the start with its variable's name,
rather than falling back silently to a schedule nobody asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DASHBOARD_URL = "http://localhost:8050"


@dataclass(frozen=True)
class AlertSettings:
    interval_s: float = 30.0  # THREADLINE_ALERT_INTERVAL: seconds between evaluations; 0: no alerting
    retry_s: float = 5.0  # THREADLINE_ALERT_RETRY_SECONDS: wait after the first failed delivery
    retry_max_s: float = 600.0  # THREADLINE_ALERT_RETRY_MAX_SECONDS: the longest wait between attempts
    max_attempts: int = 12  # THREADLINE_ALERT_MAX_ATTEMPTS: then the notification is given up (failed)
    timeout_s: float = 10.0  # THREADLINE_ALERT_TIMEOUT: one delivery attempt
    dashboard_url: str = DEFAULT_DASHBOARD_URL  # THREADLINE_DASHBOARD_URL: links in the payloads
    max_transactions: int = 20  # transactions listed in one notification (the count is always exact)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> AlertSettings:
        def number(name: str, default: float, low: float) -> float:
            text = environ.get(name, "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{name}={text!r} is not a number") from None
            if not value >= low:
                raise ValueError(f"{name}={text!r} must be at least {low:g}")
            return value

        settings = cls(
            interval_s=number("THREADLINE_ALERT_INTERVAL", cls.interval_s, 0.0),
            retry_s=number("THREADLINE_ALERT_RETRY_SECONDS", cls.retry_s, 0.01),
            retry_max_s=number("THREADLINE_ALERT_RETRY_MAX_SECONDS", cls.retry_max_s, 0.01),
            max_attempts=int(number("THREADLINE_ALERT_MAX_ATTEMPTS", cls.max_attempts, 1)),
            timeout_s=number("THREADLINE_ALERT_TIMEOUT", cls.timeout_s, 0.1),
            dashboard_url=(environ.get("THREADLINE_DASHBOARD_URL") or DEFAULT_DASHBOARD_URL).rstrip("/"),
        )
        if 0 < settings.interval_s < 0.1:
            raise ValueError("THREADLINE_ALERT_INTERVAL must be 0 (no alerting) or at least 0.1 seconds")
        return settings

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0

    def backoff_s(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failures: doubling from ``retry_s``, at most ``retry_max_s``."""
        return min(self.retry_s * 2 ** max(failed_attempts - 1, 0), self.retry_max_s)
