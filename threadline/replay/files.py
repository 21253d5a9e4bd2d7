"""Opening log files: plain or gzip-compressed (``.gz``), which is how large logs usually travel."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO

from .errors import ReplayError


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed on the fly when its name ends in ``.gz``."""
    try:
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")  # the caller closes it
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror or error}") from None
