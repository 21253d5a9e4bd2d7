"""A headless Chromium (Debian's chromium and chromium-driver packages) driven by Selenium.

It reads the page as a person does: it waits for what is visible, reads visible text, and saves
full-page screenshots to test-artifacts/dashboard/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.otlp_receiver import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = os.environ.get("THREADLINE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("THREADLINE_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
T = TypeVar("T")
TIMEOUT = float(os.environ.get("THREADLINE_BROWSER_TIMEOUT", "45"))  # seconds; generous for a busy CI machine


def available() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


class Browser:
    """One Chromium window on the dashboard at ``base_url``."""

    def __init__(self, base_url: str, width: int = 1480, height: int = 1000) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        options.add_argument("--lang=en-GB")
        service = Service(executable_path=CHROMEDRIVER)
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(60)
        self.base_url = base_url.rstrip("/")
        self.width, self.height = width, height

    def quit(self) -> None:
        self.driver.quit()

    def open(self, path: str, ready: str = "#page > *") -> None:
        """Load ``path`` and wait until the router has drawn the page (``ready`` is visible)."""
        self.driver.get(self.base_url + path)
        self.visible(ready)
        self.settle()

    def settle(self, timeout: float = TIMEOUT) -> None:
        """Wait until no Dash callback is running (Dash marks the page while one is)."""

        def idle(driver: webdriver.Chrome) -> bool:
            return not driver.execute_script(
                "return document.querySelector('._dash-loading-callback') !== null "
                "|| document.title === 'Updating...'"
            )

        WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(idle)
        time.sleep(0.3)  # charts and grids draw themselves after their callback ends

    def until(self, condition: Callable[[], T | None], timeout: float = TIMEOUT, message: str = "") -> T:
        """Poll ``condition`` until it returns something truthy (stale elements are retried)."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (StaleElementReferenceException, WebDriverException) as error:
                last_error = error
            time.sleep(0.1)
        raise TimeoutException(message or f"timed out; last error: {last_error}")

    def visible(self, selector: str, timeout: float = TIMEOUT) -> WebElement:
        def find() -> WebElement | None:
            for element in self.driver.find_elements(By.CSS_SELECTOR, selector):
                if element.is_displayed():
                    return element
            return None

        return self.until(find, timeout, f"nothing visible matches {selector!r} on {self.driver.current_url}")

    def click(self, target: str | WebElement) -> None:
        """Click as a person would: the element brought to the middle of the window first.

        A selector is looked up again if the page redraws the element meanwhile.
        """

        def attempt() -> bool:
            element = self.visible(target) if isinstance(target, str) else target
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            time.sleep(0.15)
            element.click()
            return True

        if isinstance(target, str):
            self.settle()
            self.until(attempt, message=f"could not click {target!r}")
        else:
            attempt()

    def text(self, selector: str, timeout: float = TIMEOUT) -> str:
        return self.visible(selector, timeout).text.strip()

    def all_text(self, selector: str) -> list[str]:
        return [
            e.text.strip() for e in self.driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()
        ]

    def wait_text(self, selector: str, expected: str, timeout: float = TIMEOUT) -> str:
        """Wait until the element's visible text contains ``expected``."""

        def check() -> str | None:
            text = self.text(selector, timeout=timeout)
            return text if expected in text else None

        return self.until(check, timeout, f"{selector!r} never showed {expected!r}")

    def path(self) -> str:
        return self.driver.execute_script("return window.location.pathname + window.location.search")

    def theme(self) -> str:
        return self.driver.execute_script("return document.documentElement.getAttribute('data-bs-theme')")

    def set_theme(self, theme: str) -> None:
        """Switch the colour mode the way a person does, with the toggle, until it is ``theme``."""
        if self.theme() != theme:
            self.visible("#theme-toggle").click()
            self.until(lambda: self.theme() == theme, message=f"the theme never became {theme}")
        self.settle()

    def screenshots(self, name: str) -> None:
        """The page as it is now, in the light and the dark theme (ending in light)."""
        for theme in ("light", "dark"):
            self.set_theme(theme)
            path = self.screenshot(f"{name}-{theme}")
            assert path.stat().st_size > 10_000
        self.set_theme("light")

    def screenshot(self, name: str) -> Path:
        """A full-page PNG in test-artifacts/dashboard/ (the window grows to the page's height)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height, chrome = self.driver.execute_script(
            "return [Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),"
            " window.outerHeight - window.innerHeight];"
        )
        self.driver.set_window_size(self.width, min(max(height + chrome, self.height), 6000))
        time.sleep(0.6)  # responsive charts redraw at the new size
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(self.width, self.height)
        return path


class DashboardProcess:
    """``threadline dashboard`` in its own process, on a free port."""

    def __init__(
        self,
        api_url: str,
        log_dir: Path,
        port: int | None = None,
        api_key: str | None = None,
        env: dict[str, str] | None = None,
        base_path: str = "/",
    ) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.env = env or {}  # more THREADLINE_* variables (sign-in)
        self.base_path = base_path
        self.port = port or free_port()
        self.log_path = log_dir / f"dashboard-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it answers, its base path included (without the trailing slash)."""
        return f"http://127.0.0.1:{self.port}{self.base_path.rstrip('/')}"

    def start(self, timeout_s: float = 60) -> DashboardProcess:
        import httpx

        command = [
            sys.executable,
            "-m",
            "threadline",
            "dashboard",
            "--port",
            str(self.port),
            "--api",
            self.api_url,
            "--base-path",
            self.base_path,
        ]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
        if self.api_key:
            environment["THREADLINE_API_KEY"] = self.api_key  # as a deployment would pass it
        environment.update(self.env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=environment
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dashboard exited with {self.process.returncode}:\n{self.log()}")
            try:
                # 401: up, with sign-in on
                if httpx.get(self.url + "/_dash-layout", timeout=1).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"dashboard did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
