"""An integration process that sends business events with the real SDK at a steady pace.

    python -m tests.support.sdk_client ENDPOINT SYSTEM COUNT RATE SPOOL_DIR [FLUSH_TIMEOUT_S]

Event ids are ``<system>-<n>``, so a test can tell exactly which events reached the store. Exits 0
once everything was delivered (flush answered True), 3 if some is still only in the spool.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from threadline import sdk


def main(endpoint: str, system: str, count: int, rate: float, spool_dir: str, flush_timeout_s: float) -> int:
    sdk.configure(service=f"{system}-sync", system=system, endpoint=endpoint, spool_dir=spool_dir)
    start = time.monotonic()
    for n in range(count):
        sdk.event(
            "quote-to-cash",
            "erp.order.created",
            correlation_id=f"{system.upper()}-{n // 3}",
            event_id=f"{system}-{n}",
            timestamp=dt.datetime(2026, 3, 2, tzinfo=dt.UTC) + dt.timedelta(seconds=n),
        )
        pause = start + (n + 1) / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print(f"sent {count}", flush=True)
    if flush_timeout_s <= 0:
        return 0  # exit at once: what is undelivered stays in the spool for the next process
    return 0 if sdk.flush(flush_timeout_s) else 3


if __name__ == "__main__":
    endpoint, system, count, rate, spool_dir, *rest = sys.argv[1:]
    sys.exit(main(endpoint, system, int(count), float(rate), spool_dir, float(rest[0]) if rest else 120.0))
