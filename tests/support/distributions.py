"""Wheels of this checkout and fresh virtual environments to install them in, as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK_PROJECT = ROOT / "sdk"
SERVER_PROJECT = ROOT

# What a fresh venv brings along, not what the installed wheel pulled in.
TOOLING = ("pip", "setuptools", "_distutils_hack", "distutils-precedence.pth", "pkg_resources")


def build_wheel(project: Path, into: Path) -> Path:
    """The wheel of ``project`` (a folder with a pyproject.toml), built by pip as a user builds it.

    It is built from a copy of what a clean checkout holds (pyproject.toml, README.md, src/): pip
    builds in the source folder, and setuptools would reuse an earlier build/ or egg-info there.
    """
    staged = into / f"source-of-{project.resolve().name}"
    staged.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(project / name, staged / name)
    shutil.copytree(
        project / "src", staged / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    before = set(into.glob("*.whl"))
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(into)]
    subprocess.run([*pip_wheel, str(staged)], check=True, capture_output=True, timeout=300)
    [wheel] = set(into.glob("*.whl")) - before
    return wheel


class FreshVenv:
    """A new virtual environment: nothing of this checkout or of the project's .venv in it."""

    def __init__(self, path: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
        self.path = path
        self.python = path / "bin" / "python"
        self.site_packages = Path(
            self.run_python("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        )

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def pip_install(self, *arguments: str | Path) -> None:
        subprocess.run(
            [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *map(str, arguments),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )

    def run_python(self, *arguments: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """What ``python ARGUMENTS`` of this venv prints; its output in the error when it fails."""
        done = subprocess.run(
            [str(self.python), *arguments], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
        )
        assert done.returncode == 0, f"python {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout.strip()

    def distributions(self) -> set[str]:
        """The normalised names of every distribution installed here."""
        listed = subprocess.run(
            [str(self.python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        return {entry["name"].lower().replace("_", "-") for entry in json.loads(listed)}

    def installed_bytes(self) -> int:
        """The size of what was installed into site-packages, the venv's own pip and setuptools aside."""
        total = 0
        for entry in self.site_packages.iterdir():
            if entry.name.split("-")[0] in TOOLING or entry.name in TOOLING:
                continue
            files = [entry] if entry.is_file() else [path for path in entry.rglob("*") if path.is_file()]
            total += sum(path.stat().st_size for path in files)
        return total

    def borrow_packages_of_this_interpreter(self) -> None:
        """Let this venv import the test interpreter's third-party packages (chdb, dash...) without
        downloading them again. A folder named in a .pth file is added to sys.path without reading
        the .pth files inside it, so the checkout's editable install stays invisible here."""
        (self.site_packages / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
