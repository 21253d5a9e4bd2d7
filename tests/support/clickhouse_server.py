"""A real ClickHouse server for tests, when its binary is installed: free ports, a temporary folder.

``clickhouse_command()`` finds ``clickhouse`` (the single binary, run as ``clickhouse server``) or
``clickhouse-server`` on PATH; ``why_not_available()`` says why the server variant of a test
cannot run here, or returns None when it can.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.otlp_receiver import free_port

# The oldest server with everything the collector's schema and queries use (Map columns, window
# functions, query parameters over HTTP); an older one is reported, not run.
MIN_VERSION = (22, 8)


def clickhouse_command() -> list[str] | None:
    if path := shutil.which("clickhouse"):
        return [path, "server"]
    if path := shutil.which("clickhouse-server"):
        return [path]
    return None


def why_not_available() -> str | None:
    if clickhouse_command() is None:
        return "no ClickHouse server here: neither `clickhouse` nor `clickhouse-server` is on PATH"
    return None


BACKUP_DISK = "backups"  # where `threadline backup disk:backups:NAME` puts a server's backups
CONFIG = """<clickhouse>
    <logger>
        <level>warning</level>
        <log>{folder}/log/clickhouse-server.log</log>
        <errorlog>{folder}/log/clickhouse-server.err.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{folder}/data/</path>
    <tmp_path>{folder}/tmp/</tmp_path>
    <user_files_path>{folder}/user_files/</user_files_path>
    <format_schema_path>{folder}/format_schemas/</format_schema_path>
    <users_config>{folder}/users.xml</users_config>
    <mark_cache_size>268435456</mark_cache_size>
    <storage_configuration>
        <disks><{backup_disk}><type>local</type><path>{folder}/backups/</path></{backup_disk}></disks>
    </storage_configuration>
    <backups><allowed_disk>{backup_disk}</allowed_disk></backups>
</clickhouse>
"""

USERS = """<clickhouse>
    <profiles><default/></profiles>
    <quotas><default/></quotas>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
</clickhouse>
"""


@dataclass
class ClickHouseServer:
    folder: Path
    http_port: int = field(default_factory=free_port)
    tcp_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 60) -> ClickHouseServer:
        command = clickhouse_command()
        if command is None:
            raise RuntimeError(why_not_available())
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "log").mkdir(exist_ok=True)
        config = self.folder / "config.xml"
        config.write_text(
            CONFIG.format(
                folder=self.folder, http_port=self.http_port, tcp_port=self.tcp_port, backup_disk=BACKUP_DISK
            )
        )
        (self.folder / "users.xml").write_text(USERS)
        with open(self.folder / "log" / "stdout.log", "ab") as log:
            self.process = subprocess.Popen(
                [*command, "--config-file", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env={**os.environ, "CLICKHOUSE_WATCHDOG_ENABLE": "0"},
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"clickhouse exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/ping", timeout=1).text.strip() == "Ok.":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"clickhouse did not answer /ping in {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        logs = sorted((self.folder / "log").glob("*.log"))
        return "\n".join(path.read_text(errors="replace")[-4000:] for path in logs)

    def query(self, sql: str) -> str:
        response = httpx.post(self.url, content=sql.encode(), timeout=30)
        response.raise_for_status()
        return response.text

    def version(self) -> tuple[int, int]:
        found = re.match(r"(\d+)\.(\d+)", self.query("SELECT version()"))
        assert found, "SELECT version() did not answer a version"
        return int(found[1]), int(found[2])

    def new_database(self) -> str:
        """A fresh, empty database; returns the collector's DSN for it."""
        name = f"threadline_{uuid.uuid4().hex[:12]}"
        self.query(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
