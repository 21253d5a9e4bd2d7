"""``make soak``: ten minutes of steady traffic while the collector is SIGKILLed every two minutes.

Three SDK client processes send at a steady rate; the collector is killed and restarted on the
same store on a schedule. At the end, the store is opened directly (after the collector stopped)
and the figures printed: events sent, stored (distinct), lost (must be 0), duplicated rows (must
be 0). Not part of `make test`: it takes as long as it says.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.collector_process import ROOT, CollectorProcess
from tests.support.otlp_receiver import free_port
from threadline.collector.storage import Store

SYSTEMS = ("salesforce", "netsuite", "stripe")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=120.0, help="seconds between SIGKILLs")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second per client")
    arguments = parser.parse_args()
    seconds = arguments.minutes * 60
    count = int(arguments.rate * seconds)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        port = free_port()
        collector = CollectorProcess(store_dir=root / "store", port=port, isolated=True).start()
        env = {**os.environ, "THREADLINE_MAX_BACKOFF": "2", "THREADLINE_EXPORT_TIMEOUT": "3"}
        clients = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.sdk_client",
                    collector.url,
                    system,
                    str(count),
                    str(arguments.rate),
                    str(root / f"spool-{system}"),
                    "600",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for system in SYSTEMS
        ]
        started = time.monotonic()
        kills = 0
        while time.monotonic() - started < seconds:
            time.sleep(min(arguments.kill_every, max(seconds - (time.monotonic() - started), 0)))
            if time.monotonic() - started >= seconds:
                break
            collector.kill()
            kills += 1
            print(
                f"{time.monotonic() - started:6.0f}s  collector SIGKILLed ({kills}), restarting", flush=True
            )
            time.sleep(3)
            collector = CollectorProcess(store_dir=root / "store", port=port, isolated=True).start()
        exits = [client.wait(timeout=900) for client in clients]
        collector.stop()
        store = Store(f"chdb://{root / 'store'}").open()
        rows, distinct = store.query("SELECT count(), uniqExact(event_id) FROM events").result_rows[0]
        store.close()
    sent = count * len(SYSTEMS)
    lost = sent - distinct
    duplicated = rows - distinct
    load = f"{len(SYSTEMS)} clients at {arguments.rate:g} events/s each"
    print(f"\nsoak: {arguments.minutes:g} min, {kills} SIGKILLs, {load}")
    print(f"  sent        {sent}")
    print(f"  stored      {distinct}")
    print(f"  lost        {lost}")
    print(f"  duplicated  {duplicated}")
    print(f"  clients     exit codes {exits} (0: everything delivered)")
    return 0 if lost == 0 and duplicated == 0 and not any(exits) else 1


if __name__ == "__main__":
    sys.exit(main())
