"""SDK settings: each comes from an argument of ``configure``, else its environment variable."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from threadline.contract.event import DEFAULT_ERROR_KIND, ERROR_KINDS
from threadline.contract.redaction import DEFAULT_SALT

logger = logging.getLogger("threadline.sdk")


def default_spool_dir() -> Path:
    """The spool under the user's cache directory (XDG on Unix, LOCALAPPDATA on Windows)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "threadline" / "spool"


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        logger.warning("threadline: ignoring %s=%r (not a whole number); using %d", name, raw, default)
        return default
    if value < minimum:
        logger.warning("threadline: ignoring %s=%r (below %d); using %d", name, raw, minimum, default)
        return default
    return value


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        logger.warning("threadline: ignoring %s=%r (not a positive number); using %s", name, raw, default)
        return default
    return value


def _text(value: object, env: str, default: str | None = None) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is not None:
        logger.warning("threadline: ignoring configure argument %r (not a non-empty string)", value)
    from_env = os.environ.get(env, "").strip()
    return from_env or default


@dataclass(frozen=True)
class Settings:
    service: str
    system: str
    endpoint: str | None  # None: the OTLP exporter resolves OTEL_EXPORTER_OTLP_*ENDPOINT itself
    api_key: str | None
    redact_keys: tuple[str, ...]
    redact_salt: str
    spool_dir: Path
    spool_max_bytes: int
    queue_size: int
    batch_size: int
    export_timeout_s: float
    schedule_delay_s: float
    max_backoff_s: float
    shutdown_timeout_s: float
    default_error_kind: str


def traces_url(endpoint: str) -> str:
    """The OTLP traces URL for a base endpoint (``http://host:4318`` → ``.../v1/traces``)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def resolve(
    service: object = None,
    system: object = None,
    endpoint: object = None,
    api_key: object = None,
    redact_keys: object = (),
    spool_dir: object = None,
    default_error_kind: object = None,
) -> Settings:
    """Settings from the arguments, falling back to the environment; bad values are logged, not raised."""
    resolved_service = _text(service, "OTEL_SERVICE_NAME", "unknown_service")
    assert resolved_service is not None
    resolved_endpoint = _text(endpoint, "THREADLINE_ENDPOINT")

    keys: list[str] = []
    if isinstance(redact_keys, str):
        redact_keys = [redact_keys]
    if isinstance(redact_keys, Iterable):
        keys.extend(str(key) for key in redact_keys if str(key).strip())
    elif redact_keys is not None:
        logger.warning("threadline: ignoring redact_keys=%r (not a list of strings)", redact_keys)
    keys.extend(key.strip() for key in os.environ.get("THREADLINE_REDACT_KEYS", "").split(",") if key.strip())

    spool = _text(str(spool_dir) if isinstance(spool_dir, os.PathLike) else spool_dir, "THREADLINE_SPOOL_DIR")

    error_kind = _text(default_error_kind, "THREADLINE_DEFAULT_ERROR_KIND", DEFAULT_ERROR_KIND)
    if error_kind not in ERROR_KINDS:
        logger.warning("threadline: unknown default error kind %r; using %r", error_kind, DEFAULT_ERROR_KIND)
        error_kind = DEFAULT_ERROR_KIND

    return Settings(
        service=resolved_service,
        system=_text(system, "THREADLINE_SYSTEM", resolved_service) or resolved_service,
        endpoint=traces_url(resolved_endpoint) if resolved_endpoint else None,
        api_key=_text(api_key, "THREADLINE_API_KEY"),
        redact_keys=tuple(keys),
        redact_salt=os.environ.get("THREADLINE_REDACT_SALT") or DEFAULT_SALT,
        spool_dir=Path(spool) if spool else default_spool_dir(),
        spool_max_bytes=_int_env("THREADLINE_SPOOL_MAX_BYTES", 256 * 1024 * 1024),
        queue_size=_int_env("THREADLINE_QUEUE_SIZE", 8192),
        batch_size=_int_env("THREADLINE_BATCH_SIZE", 512),
        export_timeout_s=_float_env("THREADLINE_EXPORT_TIMEOUT", 5.0),
        schedule_delay_s=_float_env("THREADLINE_SCHEDULE_DELAY", 0.5),
        max_backoff_s=_float_env("THREADLINE_MAX_BACKOFF", 30.0),
        shutdown_timeout_s=_float_env("THREADLINE_SHUTDOWN_TIMEOUT", 5.0),
        default_error_kind=error_kind or DEFAULT_ERROR_KIND,
    )
