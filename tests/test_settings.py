"""Every component's settings are data (``threadline/settings.py``): the README lists exactly them."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

from tests.support.collector_process import ROOT
from threadline.collector.alerts.settings import AlertSettings
from threadline.collector.config import CollectorSettings
from threadline.dashboard.config import DashboardSettings
from threadline.demo import DemoSettings
from threadline.settings import read, variables

MODELS: tuple[type[BaseSettings], ...] = (CollectorSettings, AlertSettings, DashboardSettings, DemoSettings)
VARIABLE = re.compile(r"`(THREADLINE_[A-Z_]+)`")


def readme_settings() -> set[str]:
    """The variables in the first column of the README's `| variable | default | meaning |` tables."""
    found: set[str] = set()
    in_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| variable |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table:
            found.update(VARIABLE.findall(line.split("|")[1]))
    return found


def test_the_readme_lists_every_setting_and_nothing_else() -> None:
    declared = {variable for model in MODELS for _, variable in variables(model)}
    listed = readme_settings()
    assert listed - declared == set(), "in the README, read by no model"
    assert declared - listed == set(), "read by a model, missing from the README's tables"


def test_each_setting_is_described_where_it_is_declared() -> None:
    undescribed = [
        f"{model.__name__}.{name}"
        for model in MODELS
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undescribed == []


def test_an_option_no_model_has_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="CollectorSettings has no setting 'prot'"):
        read(CollectorSettings, prot=4318)
