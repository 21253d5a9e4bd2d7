"""A real collector in its own process, on a free port, with its own store (embedded by default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.otlp_receiver import free_port
from threadline.collector.config import EXAMPLE_WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CollectorProcess:
    store_dir: Path  # the embedded store's folder; its parent also holds the collector's log
    workflows: Path = EXAMPLE_WORKFLOWS
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    store: str | None = None  # a store DSN (e.g. http://127.0.0.1:8123/db); default chdb://<store_dir>
    isolated: bool = False  # True: no THREADLINE_* / OTEL_* variable of the calling shell reaches it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        return self.store or f"chdb://{self.store_dir}"

    def start(self, timeout_s: float = 60) -> CollectorProcess:
        self.store_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = self.store_dir.parent / f"collector-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            "threadline",
            "collector",
            "--port",
            str(self.port),
            "--store",
            self.dsn,
            "--workflows",
            str(self.workflows),
        ]
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not (self.isolated and name.startswith(("THREADLINE_", "OTEL_")))
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**inherited, **self.env}, cwd=ROOT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()  # never leave a half-started collector behind
        raise RuntimeError(f"collector did not become ready in {timeout_s} s:\n{self.log()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def peak_memory_bytes(self) -> int:
        """The most resident memory the process has used so far (VmHWM; Linux only)."""
        assert self.process is not None, "the collector is not running"
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc/PID/status")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


# For a module's own definitions derived by the state keeper: every 0.2 s, each answer afresh (never
# one kept from before the keeper's pass), no alert evaluation.
KEEPING_FAST = {
    "THREADLINE_STATE_INTERVAL": "0.2s",
    "THREADLINE_ALERT_INTERVAL": "0",
    "THREADLINE_SHARED_READ_SECONDS": "0",
}


@contextmanager
def running_collector(workdir: Path, workflows: Path, env: Mapping[str, str]) -> Iterator[CollectorProcess]:
    """A collector of a module's own, with its own definitions and settings."""
    running = CollectorProcess(
        store_dir=workdir / "store", workflows=workflows, env=dict(env), isolated=True
    ).start()
    try:
        yield running
    finally:
        running.stop()
