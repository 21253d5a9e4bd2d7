"""Fixtures every test package may use."""

from __future__ import annotations

import pytest

from tests.support.settings import clear_threadline_variables


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without THREADLINE_* variables, to set some on (undone after the test)."""
    return clear_threadline_variables(monkeypatch)
