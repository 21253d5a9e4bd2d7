"""``threadline demo``: a live enterprise in one command.

Starts three child processes — the collector on a fresh embedded store, the dashboard, and the
simulator (which back-fills a few days of history, then runs live) — prints the two URLs, and
stops them all on Ctrl-C, on SIGTERM, or after ``THREADLINE_DEMO_SECONDS``. No child outlives it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings

from threadline.collector.alerts.settings import AlertSettings
from threadline.collector.config import CollectorSettings
from threadline.dashboard.config import DashboardSettings
from threadline.settings import config, read

COLLECTOR_PORT = 4318
DASHBOARD_PORT = 8050
API = f"http://127.0.0.1:{COLLECTOR_PORT}"


class DemoSettings(BaseSettings):
    model_config = config("THREADLINE_DEMO_")

    seconds: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="stop after this many seconds (none or 0: on Ctrl-C)",
    )

    @classmethod
    def from_environment(cls, **options: Any) -> DemoSettings:
        """The variable, with the command line's ``options`` (None: not given) on top.

        Raises SettingsError naming the variable or option, the value and the reason."""
        return read(cls, **options)


def check_children_settings() -> None:
    """The collector and the dashboard read the demo's environment: a setting they would refuse
    stops the demo before it starts anything (SettingsError), not a child after a while."""
    CollectorSettings.from_environment(port=COLLECTOR_PORT)
    AlertSettings.from_environment()
    DashboardSettings.from_environment(port=DASHBOARD_PORT, api=API)


class DemoError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    command: Sequence[str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until_up(url: str, child: Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise DemoError(f"the {child.name} stopped while starting; see {child.log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise DemoError(f"the {child.name} did not answer at {url} within {timeout_s:.0f}s; see {child.log}")


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run(
    workdir: Path = Path(".threadline"),
    seconds: float | None = None,
    rate: float = 30.0,
    seed: int = 7,
) -> None:
    """Run the demo until Ctrl-C, SIGTERM or ``seconds`` have passed."""
    for port in (COLLECTOR_PORT, DASHBOARD_PORT):
        if not _port_free(port):
            raise DemoError(f"port {port} is in use; stop whatever listens there (another demo?) and retry")
    store = workdir / "demo-store"
    shutil.rmtree(store, ignore_errors=True)  # every demo starts from the same, fresh picture
    workdir.mkdir(parents=True, exist_ok=True)
    api = API
    python = [sys.executable, "-m", "threadline"]
    env = {key: value for key, value in os.environ.items() if key != "THREADLINE_API_KEYS"}
    env["THREADLINE_SPOOL_DIR"] = str(workdir / "demo-spool")
    # The demo's store fills from empty in its first minute, under one viewer: an answer shared for
    # the default 30 s (made for many viewers at millions of events) would show the empty picture.
    env.setdefault("THREADLINE_SHARED_READ_SECONDS", "5")
    children = [
        Child(
            "collector",
            [*python, "collector", "--port", str(COLLECTOR_PORT), "--store", f"chdb://{store}"],
            workdir / "collector.log",
        ),
        Child(
            "dashboard",
            [*python, "dashboard", "--port", str(DASHBOARD_PORT), "--api", api],
            workdir / "dashboard.log",
        ),
        Child(
            "simulator",
            [*python, "simulate", "--endpoint", api, "--rate", str(rate), "--seed", str(seed)],
            workdir / "simulator.log",
        ),
    ]
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        collector, dashboard, simulator = children
        collector.start(env)
        _wait_until_up(api + "/readyz", collector, 120)
        dashboard.start(env)
        simulator.start(env)
        _wait_until_up(f"http://127.0.0.1:{DASHBOARD_PORT}/", dashboard, 120)
        print(f"Threadline demo is running (logs in {workdir}/):", flush=True)
        print(f"  dashboard  http://localhost:{DASHBOARD_PORT}", flush=True)
        print(f"  collector  {api}  (API docs at {api}/docs)", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        deadline = time.monotonic() + seconds if seconds else None
        while deadline is None or time.monotonic() < deadline:
            for child in (collector, dashboard):
                if not child.alive():
                    raise DemoError(f"the {child.name} stopped; see {child.log}")
            time.sleep(0.5)
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in reversed(children):
            child.stop()
        print("Threadline demo stopped.", flush=True)
