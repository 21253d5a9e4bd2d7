"""Dependencies flow one way: SDK -> ingest and storage -> state and queries -> alerts -> HTTP,
with the dashboard, the simulator and replay beside the collector as its clients.

The contracts are data in pyproject.toml (``[tool.importlinter]``); import-linter checks them on
the import graph grimp reads from the source (``if TYPE_CHECKING:`` imports included), without
importing anything. A new import against the flow, or any import cycle, fails here, naming the
import and its line.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.collector_process import ROOT

PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _named_subpackages() -> set[str]:
    """The subpackages of ``threadline`` the contracts name (``threadline.collector`` -> collector)."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    names: set[str] = set()
    for contract in config["contracts"]:
        for key in ("layers", "source_modules", "forbidden_modules", "ancestors"):
            for entry in contract.get(key, []):
                for module in entry.replace("|", ":").split(":"):
                    parts = module.strip(" ()").split(".")
                    if parts[0] == "threadline" and len(parts) > 1:
                        names.add(parts[1])
    return names


def _source_tree(into: Path) -> Path:
    """One ``threadline`` folder holding every subpackage, as links to where each really is.

    grimp walks the folders of the root package's import spec; a subpackage that setuptools maps
    in from a folder of its own (``package-dir``) is not under them, so it would not be checked.
    """
    root = into / "threadline"
    root.mkdir(parents=True)
    spec = importlib.util.find_spec("threadline")
    assert spec is not None and spec.submodule_search_locations is not None
    for portion in spec.submodule_search_locations:
        for entry in Path(portion).iterdir():
            if not (root / entry.name).exists():
                (root / entry.name).symlink_to(entry)
    if not (root / "__init__.py").exists():
        (root / "__init__.py").touch()  # a package of its own: no other portion of the namespace joins
    for name in _named_subpackages():
        found = importlib.util.find_spec(f"threadline.{name}")
        if found is not None and found.submodule_search_locations and not (root / name).exists():
            (root / name).symlink_to(found.submodule_search_locations[0])
    return into


def test_imports_follow_the_contracts_and_form_no_cycle(tmp_path: Path) -> None:
    tree = _source_tree(tmp_path / "source")
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(PYPROJECT)],
        cwd=tree,  # not the checkout: its own threadline/ folder would be found first
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
