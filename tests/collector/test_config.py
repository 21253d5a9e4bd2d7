"""Collector settings from ``THREADLINE_*`` variables (``collector/config.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.collector_process import ROOT
from threadline.collector.config import CollectorSettings


@pytest.mark.parametrize(("text", "seconds"), [("", 600.0), ("90", 90.0), ("15m", 900.0), ("1h30m", 5400.0)])
def test_the_future_skew_reads_as_the_workflow_file_s_durations(text: str, seconds: float) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THREADLINE_MAX_FUTURE_SKEW", text)
        settings = CollectorSettings.from_environment()
    assert settings.max_future_skew_s == seconds


def test_a_collector_with_an_unreadable_skew_does_not_start_and_names_the_variable() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "threadline", "collector", "--port", "0"],
        env={"THREADLINE_MAX_FUTURE_SKEW": "soon", "PATH": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "THREADLINE_MAX_FUTURE_SKEW: invalid duration 'soon'" in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize("text", ["0", "-5", "fast", "nan"])
def test_a_body_min_rate_that_is_not_a_positive_number_names_the_variable(text: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THREADLINE_BODY_MIN_RATE", text)
        with pytest.raises(ValueError, match="THREADLINE_BODY_MIN_RATE: expected a positive number"):
            CollectorSettings.from_environment()
