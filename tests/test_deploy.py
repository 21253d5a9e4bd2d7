"""The container deployment files are valid: compose accepts docker-compose.yml as written, and it
never serves the example keys to the network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# What a deployment must say itself: the keys file and the dashboard's key (no default works).
REAL_KEYS = {
    "THREADLINE_KEYS_FILE": "/etc/threadline/keys.yaml",
    "THREADLINE_DASHBOARD_KEY": "tl_read_c0ffee",
}
EXAMPLE_KEYS = ("change-me", "keys.example.yaml")


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    """`compose config` of the file with only ``env`` set (none of the calling shell's THREADLINE_*)."""
    command = compose_command()
    if command is None:
        pytest.skip(
            "neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)"
        )
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("THREADLINE_")}
    return subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**inherited, **env},
    )


def published_addresses(service: dict[str, Any]) -> list[str]:
    """The host address of each published port ("" for every interface), in either compose's form."""
    addresses = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            addresses.append(port.get("host_ip", ""))
        else:  # "[address:]published:target[/protocol]"
            parts = str(port).split(":")
            addresses.append(parts[0] if len(parts) == 3 else "")
    return addresses


def test_docker_compose_config_accepts_the_file() -> None:
    result = compose_config(**REAL_KEYS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"clickhouse", "collector", "dashboard"}
    assert all("healthcheck" in service for service in services.values())


@pytest.mark.parametrize("missing", sorted(REAL_KEYS))
def test_compose_refuses_to_start_without_real_keys_and_names_the_missing_one(missing: str) -> None:
    given = {name: value for name, value in REAL_KEYS.items() if name != missing}
    result = compose_config(**given)
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.parametrize("address", [None, "0.0.0.0"])
def test_no_service_publishes_on_every_interface_with_an_example_key(address: str | None) -> None:
    env = REAL_KEYS if address is None else {**REAL_KEYS, "THREADLINE_PUBLISH_ADDRESS": address}
    result = compose_config(**env)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    published = {name: published_addresses(service) for name, service in services.items()}
    assert published["collector"] and published["dashboard"]
    for name, service in services.items():
        addresses = published[name]
        if address is None:  # by default only this machine reaches the ports
            assert all(host == "127.0.0.1" for host in addresses), (name, addresses)
        if any(host in ("", "0.0.0.0") for host in addresses):
            text = yaml.safe_dump(service)
            assert not any(example in text for example in EXAMPLE_KEYS), (name, text)


def test_the_collector_is_pointed_at_the_clickhouse_server_and_the_keys() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = " ".join(services["collector"]["command"])
    assert "--store=http://threadline:" in command and "@clickhouse:8123/threadline" in command
    assert "--api-keys=/app/deploy/keys.yaml" in command
    assert services["dashboard"]["depends_on"]["collector"]["condition"] == "service_healthy"


def test_the_image_installs_every_component_the_commands_need() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("sdk", "src", "examples"):
        assert f"COPY {folder} ./{folder}" in dockerfile
        assert (ROOT / folder).is_dir()
