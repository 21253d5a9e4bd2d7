"""Sending batches to the collector's ``POST /v1/events``, patiently but not forever.

429 (over the key's rate) and 503 (store unavailable, writer overloaded) are the collector
asking to come back later: the batch is sent again after its ``Retry-After``, a bounded number
of times. A lost connection or a timeout is retried the same way: the collector may have stored
the batch before the answer was lost, and then the retry's events come back as duplicates
(event ids are deterministic), never as double counts.
"""

from __future__ import annotations

import email.utils
import gzip
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from .errors import ReplayError

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Acknowledged:
    accepted: int
    duplicates: int


class BatchTooLarge(Exception):
    """413: the batch is over the collector's body limit; the caller sends it in halves."""


class BatchRefused(Exception):
    """400: the collector refused the batch (all of it); ``problems`` as it listed them, by index."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems


def retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); ``default`` if none."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(when.timestamp() - time.time(), 0.0)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)[:500]


class CollectorClient:
    """One connection to a collector, for the batches of one replay."""

    def __init__(
        self,
        endpoint: str,
        api_key: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 60.0,
        max_attempts: int = 6,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/v1/events") else base + "/v1/events"
        self.headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.client = client or httpx.Client(timeout=timeout_s)
        self._owns_client = client is None
        self.max_attempts = max(max_attempts, 1)
        self.max_wait_s = max_wait_s
        self.sleep = sleep

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def send(self, events: Sequence[bytes]) -> Acknowledged:
        """Send one batch of events, each already JSON-encoded.

        Raises ``BatchTooLarge`` (413), ``BatchRefused`` (400) or ``ReplayError`` (anything else).
        """
        body = gzip.compress(b'{"events":[' + b",".join(events) + b"]}", compresslevel=5)
        for attempt in range(1, self.max_attempts + 1):
            backoff = min(0.5 * 2 ** (attempt - 1), self.max_wait_s)
            try:
                response = self.client.post(self.url, content=body, headers=self.headers)
            except httpx.TransportError as error:
                if attempt == self.max_attempts:
                    raise ReplayError(
                        f"the collector at {self.url} cannot be reached ({attempt} attempts): {error!r}"
                    ) from None
                self.sleep(backoff)
                continue
            if response.status_code in RETRY_STATUSES:
                if attempt == self.max_attempts:
                    raise ReplayError(
                        f"the collector kept answering {response.status_code} ({attempt} attempts): "
                        f"{_message(response)}"
                    )
                self.sleep(min(retry_after(response.headers.get("retry-after"), backoff), self.max_wait_s))
                continue
            return self._answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, response: httpx.Response) -> Acknowledged:
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
                return Acknowledged(int(body["accepted"]), int(body["duplicates"]))
            except (ValueError, KeyError, TypeError):
                raise ReplayError(
                    f"{self.url} answered 200 but not as a collector: {response.text[:200]}"
                ) from None
        if status == 413:
            raise BatchTooLarge(_message(response))
        if status == 400:
            try:
                problems = response.json().get("problems") or []
            except (ValueError, AttributeError):
                problems = []
            raise BatchRefused(_message(response), [p for p in problems if isinstance(p, dict)])
        if status in (401, 403):
            raise ReplayError(f"the collector refused the API key ({status}): {_message(response)}")
        raise ReplayError(f"the collector answered {status} to {self.url}: {_message(response)}")
