"""Opening log files: plain or gzip-compressed (``.gz``), which is how large logs usually travel."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import BinaryIO

from .errors import ReplayError


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed on the fly when its name ends in ``.gz``."""
    try:
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads as a BinaryIO
        return open(path, "rb")  # the caller closes it
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror or error}") from None


def content_digest(path: Path) -> str:
    """SHA-256 (hex) of the log's content, decompressed: the same log whatever its name, place or compression.

    A file that cannot be read to its end (a truncated ``.gz``) is digested up to where it breaks,
    which is where its reader stops too, so a broken file keeps one identity.
    """
    digest = hashlib.sha256()
    with open_binary(path) as stream:
        try:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        except (OSError, EOFError):
            pass
    return digest.hexdigest()
