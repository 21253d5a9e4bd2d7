"""`threadline demo` shows a live enterprise within a minute and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.collector_process import ROOT
from threadline.demo import DemoSettings, check_children_settings
from threadline.settings import SettingsError

pytestmark = pytest.mark.slow

API = "http://127.0.0.1:4318"
STATES = ("completed", "failed", "stuck", "in_progress")


def processes_in_session(session: int) -> list[str]:
    """Every process still alive in the demo's session: its children would be here."""
    return subprocess.run(["pgrep", "-as", str(session)], capture_output=True, text=True).stdout.splitlines()


def test_the_demo_shows_every_state_within_a_minute_then_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "THREADLINE_DEMO_SECONDS": "75", "PYTHONPATH": str(ROOT)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "threadline", "demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        counts: dict[str, int] = {}
        while time.monotonic() - started < 60 and not all(counts.get(state) for state in STATES):
            time.sleep(1)
            try:
                for state in STATES:
                    page = httpx.get(
                        f"{API}/api/transactions", params={"state": state, "limit": 1}, timeout=10
                    )
                    counts[state] = page.json()["total"] if page.status_code == 200 else 0
            except httpx.HTTPError:
                continue
        assert all(counts.get(state) for state in STATES), (
            f"after {time.monotonic() - started:.0f}s: {counts}"
        )
        assert httpx.get("http://127.0.0.1:8050/", timeout=30).status_code == 200
        output, _ = demo.communicate(timeout=120)  # it stops by itself after THREADLINE_DEMO_SECONDS
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)
    assert demo.returncode == 0, output
    assert "http://localhost:8050" in output and "Threadline demo stopped." in output
    assert processes_in_session(demo.pid) == []  # collector, dashboard and simulator all gone
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{API}/healthz", timeout=2)


def test_the_demo_runs_for_demo_seconds_or_its_option(environment: pytest.MonkeyPatch) -> None:
    assert DemoSettings.from_environment().seconds is None  # until Ctrl-C
    environment.setenv("THREADLINE_DEMO_SECONDS", "75")
    assert DemoSettings.from_environment().seconds == 75
    assert DemoSettings.from_environment(seconds=5.0).seconds == 5
    with pytest.raises(SettingsError, match=r"^--seconds=-1.0: expected at least 0$"):
        DemoSettings.from_environment(seconds=-1.0)


def test_the_demo_refuses_what_its_collector_or_dashboard_would(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("THREADLINE_PORT", "abc")  # the demo gives its collector --port: never read
    environment.setenv("THREADLINE_API", "x")  # and its dashboard --api
    check_children_settings()
    environment.setenv("THREADLINE_ALERT_TIMEOUT", "0")
    with pytest.raises(SettingsError) as refused:
        check_children_settings()
    assert str(refused.value) == "THREADLINE_ALERT_TIMEOUT='0': expected at least 0.1"
