"""The container deployment files are valid: compose accepts docker-compose.yml as written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file() -> None:
    command = compose_command()
    if command is None:
        pytest.skip(
            "neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)"
        )
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"clickhouse", "collector", "dashboard"}
    assert all("healthcheck" in service for service in services.values())


def test_the_collector_is_pointed_at_the_clickhouse_server_and_the_keys() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = " ".join(services["collector"]["command"])
    assert "--store=http://threadline:" in command and "@clickhouse:8123/threadline" in command
    assert "--api-keys=/app/deploy/keys.yaml" in command
    assert services["dashboard"]["depends_on"]["collector"]["condition"] == "service_healthy"


def test_the_image_installs_every_component_the_commands_need() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("threadline", "sdk", "collector", "dashboard", "examples"):
        assert f"COPY {folder} ./{folder}" in dockerfile
        assert (ROOT / folder).is_dir()
