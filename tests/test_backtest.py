"""`threadline backtest` replays history, forecasts at many moments from what was known then, and
reports how the forecasts compared with what happened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_cli import threadline

pytestmark = pytest.mark.slow


def test_a_simulated_history_is_replayed_and_the_forecasts_are_measured(tmp_path: Path) -> None:
    result = threadline(
        "backtest",
        "--simulated",
        "1",
        "--per-day",
        "200",
        "--cuts",
        "3",
        "--breach-moments",
        "5",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"moments: 3; forecasts scored: \d+; open without a forecast: \d+", out), out
    assert re.search(r"ETA mean absolute error: model \d+\.\d\d h, naive baseline \d+\.\d\d h", out), out
    assert re.search(r"hindsight \(.*\): \d+\.\d\d h, -?\d+\.\d% better than the baseline", out), out
    assert re.search(
        r"not expected to complete without intervention \(no ETA\): \d+; of these, completed", out
    ), out
    assert re.search(r"breach at 30 min lead: \d+ transactions with an SLA open then", out), out
    assert "breach precision" in out and "recall" in out


def test_a_log_and_a_simulation_together_are_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.xes"
    log.write_text("<log/>")

    result = threadline("backtest", "--simulated", "1", "--log", str(log), cwd=tmp_path)

    assert result.returncode == 2
    assert "give exactly one of --log FILE and --simulated DAYS" in result.stderr
