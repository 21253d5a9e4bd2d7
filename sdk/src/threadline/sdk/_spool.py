"""The on-disk spool: batches that could not be delivered wait here, across process restarts.

Each batch is one file holding an encoded OTLP request, written atomically (temporary file, then
rename), named so that the oldest sorts first and so that its span count is known without reading
it. Any process that configures the same directory drains it; a file being sent is locked, so two
processes never send the same file at once, and it is deleted only after the collector acknowledged it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no cross-process lock; the collector's event_id dedup still holds
    fcntl = None  # type: ignore[assignment]  # the module, or None where there is none

logger = logging.getLogger("threadline.sdk")

SUFFIX = ".otlp"
CORRUPT_DIR = "corrupt"
_NAME = re.compile(r"^\d{20}-\d+-\d+-n(\d+)\.otlp$")


def span_count(path: Path) -> int:
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else 0


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.spooled_spans = 0
        self.dropped_spans = 0
        self.corrupt_files = 0
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._ready = False

    def _ensure_directory(self) -> bool:
        if not self._ready:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._ready = True
            except OSError as error:
                logger.error("threadline: spool directory %s is not usable: %s", self.directory, error)
        return self._ready

    def write(self, payload: bytes, spans: int) -> bool:
        """Store one encoded batch; False when the disk refused it (the batch is then lost, and logged)."""
        if not self._ensure_directory():
            self._count_drop(spans, "the spool directory is not usable")
            return False
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter)}-n{spans}{SUFFIX}"
        temporary = self.directory / f".{name}.tmp"
        try:
            temporary.write_bytes(payload)
            os.replace(temporary, self.directory / name)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            self._count_drop(spans, f"writing the spool failed: {error}")
            return False
        with self._lock:
            self.spooled_spans += spans
        self._enforce_limit()
        return True

    def pending(self) -> list[Path]:
        """Spooled batches, oldest first."""
        try:
            return sorted(
                (entry for entry in self.directory.iterdir() if entry.name.endswith(SUFFIX)),
                key=lambda entry: entry.name,
            )
        except OSError:
            return []

    def _enforce_limit(self) -> None:
        files = []
        for path in self.pending():
            try:
                files.append((path, path.stat().st_size))
            except OSError:
                continue
        total = sum(size for _, size in files)
        for path, size in files:
            if total <= self.max_bytes:
                break
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            self._count_drop(span_count(path), f"the spool is over its limit of {self.max_bytes} bytes")

    def _count_drop(self, spans: int, reason: str) -> None:
        with self._lock:
            self.dropped_spans += spans
            dropped = self.dropped_spans
        logger.warning(
            "threadline: dropped %d business events (%s); %d dropped so far", spans, reason, dropped
        )

    @contextmanager
    def claim(self, path: Path) -> Iterator[bytes | None]:
        """The content of a spooled batch, held exclusively; None if another process has it or it is gone.

        The caller calls ``done(path)`` inside the block once the batch was delivered.
        """
        try:
            handle = open(path, "rb")  # noqa: SIM115 - held open for the lock's lifetime
        except OSError:
            yield None
            return
        with handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    yield None
                    return
                try:  # another process may have sent and deleted it between our open and our lock
                    if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                        yield None
                        return
                except OSError:
                    yield None
                    return
            yield handle.read()

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def quarantine(self, path: Path, reason: str) -> None:
        """Move a file that cannot be read aside, so that it never blocks the spool again."""
        with self._lock:
            self.corrupt_files += 1
        target = self.directory / CORRUPT_DIR
        try:
            target.mkdir(exist_ok=True)
            os.replace(path, target / path.name)
        except OSError:
            path.unlink(missing_ok=True)
        logger.error("threadline: skipped corrupt spool file %s (%s); moved to %s", path.name, reason, target)
