"""Settings tests start from an environment without THREADLINE_* variables: none of the shell's leak in."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest
from pydantic_settings import BaseSettings

from threadline.settings import SettingsError, read, variables

# Per variable: a value an operator may write, the field it sets, and the value it gives.
Reads = Mapping[str, tuple[str, str, object]]


def clear_threadline_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in os.environ:
        if name.upper().startswith("THREADLINE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def assert_reads_every_variable(
    model: type[BaseSettings], reads: Reads, environment: pytest.MonkeyPatch
) -> None:
    """``reads`` names every variable of ``model``, and each, set, gives its field the value expected."""
    assert set(reads) == {variable for _, variable in variables(model)}
    for variable, (text, _, _) in reads.items():
        environment.setenv(variable, text)

    settings = read(model)

    assert {field: getattr(settings, field) for _, field, _ in reads.values()} == {
        field: value for _, field, value in reads.values()
    }


def refusal(model: type[BaseSettings], environment: pytest.MonkeyPatch, variable: str, text: str) -> str:
    """Why ``model`` refuses ``variable`` set to ``text`` (SettingsError's one line)."""
    environment.setenv(variable, text)
    with pytest.raises(SettingsError) as refused:
        read(model)
    return str(refused.value)
