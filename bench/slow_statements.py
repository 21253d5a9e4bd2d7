"""The ``threadline`` command with the store's slow statements logged: a diagnosis of ``bench.memory``.

``BENCH_SLOW_S=0.5 python -m bench --scale small --only memory`` starts the collector through this
module instead of ``python -m threadline``: every ``Store.query``, ``command`` and ``insert`` that
takes ``BENCH_SLOW_S`` seconds or more (waiting for a connection included) is logged as a warning
with the thread that ran it and the statement's start. Off by default: the figures measure the
command as it ships.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from threadline.collector.storage.connection import Store

logger = logging.getLogger("threadline.bench.slow")


def _timed(name: str, original: Callable[..., Any], threshold_s: float) -> Callable[..., Any]:
    @functools.wraps(original)
    def timed(self: Store, what: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, what, *args, **kwargs)
        finally:
            took = time.perf_counter() - started
            if took >= threshold_s:
                logger.warning(
                    "slow %s %.2f s in %s: %s",
                    name,
                    took,
                    threading.current_thread().name,
                    " ".join(what.split())[:240],
                )

    return timed


def main() -> None:
    threshold_s = float(os.environ.get("BENCH_SLOW_S") or "0.5")
    for name in ("query", "command", "insert"):
        setattr(Store, name, _timed(name, getattr(Store, name), threshold_s))
    from threadline.cli import app

    app(prog_name="threadline")


if __name__ == "__main__":
    main()
