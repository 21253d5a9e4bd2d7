"""An installed server wheel runs without a checkout: `threadline collector` and `threadline demo`
from a folder that is not this repository, reading the example workflows shipped as package data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.distributions import SDK_PROJECT, SERVER_PROJECT, FreshVenv, build_wheel
from tests.support.polling import eventually
from threadline.demo import COLLECTOR_PORT, DASHBOARD_PORT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """Both wheels in a fresh venv; chdb, dash and the rest borrowed from the test interpreter."""
    root = tmp_path_factory.mktemp("server-wheel")
    wheels = [build_wheel(SDK_PROJECT, root / "wheels"), build_wheel(SERVER_PROJECT, root / "wheels")]
    venv = FreshVenv(root / "venv")
    venv.pip_install("--no-deps", *wheels)
    venv.borrow_packages_of_this_interpreter()
    return venv


def test_the_wheels_provide_threadline_not_the_checkout(installed: FreshVenv, tmp_path: Path) -> None:
    paths = installed.run_python(
        "-c", "import threadline, threadline.collector; print(*threadline.__path__, sep='\\n')", cwd=tmp_path
    )
    assert paths.splitlines() == [str(installed.site_packages / "threadline")]
    for example in ("workflows.example.yaml", "webhooks.example.yaml"):
        assert (installed.site_packages / "threadline" / "collector" / example).is_file(), example


def test_threadline_collector_runs_from_an_installed_wheel(installed: FreshVenv, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(installed.bin("threadline")), "collector", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--workflows" in done.stdout


def test_threadline_demo_runs_from_an_installed_wheel(installed: FreshVenv, tmp_path: Path) -> None:
    # The demo listens on fixed ports; another demo on this machine must finish first.
    eventually(
        lambda: port_free(COLLECTOR_PORT) and port_free(DASHBOARD_PORT), timeout=120, what="free ports"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("THREADLINE_", "OTEL_"))}
    env.pop("PYTHONPATH", None)
    demo = subprocess.Popen(
        [str(installed.bin("threadline")), "demo", "--seconds", "120"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{COLLECTOR_PORT}"
    try:

        def workflows() -> list[Any] | None:
            if demo.poll() is not None:
                raise AssertionError(f"the demo exited with {demo.returncode}")
            try:
                if httpx.get(f"{api}/readyz", timeout=2).status_code != 200:
                    return None
                return httpx.get(f"{api}/api/workflows", timeout=10).json()
            except httpx.HTTPError:
                return None

        # The collector the demo started answers, with the example workflows the wheel ships.
        defined = eventually(workflows, timeout=90, what="the demo's collector", every=0.5)
        assert "quote-to-cash" in str(defined)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
        try:
            output, _ = demo.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            output, _ = demo.communicate(timeout=10)
    assert b"Traceback" not in output, output.decode(errors="replace")
