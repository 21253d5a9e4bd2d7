"""A workflows file with a mistake on the line marked ``# <-``, loaded as the collector loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.collector.workflows import WorkflowError, load


def refused(tmp_path: Path, text: str) -> tuple[WorkflowError, Path, int]:
    """The error loading ``text`` from a file raises, the file, and the marked line's number."""
    line = next(number for number, content in enumerate(text.splitlines(), 1) if "# <-" in content)
    path = tmp_path / "workflows.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkflowError) as caught:
        load(path)
    return caught.value, path, line
