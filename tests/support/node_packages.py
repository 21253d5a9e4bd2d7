"""tests/support/node: the Node.js packages some tests run (the OTLP logs exporter, an OpenID provider).

Installed from the committed lock file once. Without Node.js a test skips, except where
``THREADLINE_REQUIRE_NODE=1`` (CI: `.ci/run` installs Node.js), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_PACKAGES = Path(__file__).resolve().parent / "node"
REQUIRE_NODE = "THREADLINE_REQUIRE_NODE"


def installed(purpose: str) -> Path:
    """The folder with its packages installed; skips (or fails, when required) without Node.js."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not on PATH: {purpose} needs Node.js 18.19+ and npm"
        if os.environ.get(REQUIRE_NODE) == "1":
            pytest.fail(f"{reason} ({REQUIRE_NODE}=1)")
        pytest.skip(reason)
    if not (NODE_PACKAGES / "node_modules" / ".package-lock.json").is_file():  # npm writes it last
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_PACKAGES, check=True, timeout=600)
    return NODE_PACKAGES
