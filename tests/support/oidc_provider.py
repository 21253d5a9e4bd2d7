"""A real, certified OpenID provider on loopback (node oidc_provider.mjs, npm's oidc-provider).

Its accounts (name: password, e-mail, roles, tenant) are in the script: ``vera`` a viewer, ``otto``
an operator, ``ada`` an admin, all of tenant acme; ``nina`` an operator of tenant globex; ``noel``
of acme without a role. Passwords are the name with ``-pw``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.support.node_packages import installed
from tests.support.otlp_receiver import free_port

CLIENT_ID, CLIENT_SECRET = "threadline-dashboard", "a-client-secret-for-the-tests"


class OidcProvider:
    """The provider, with one client: the dashboard at ``dashboard_url`` (its redirect URIs)."""

    def __init__(self, dashboard_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.dashboard_url = dashboard_url.rstrip("/")
        self.log_path = log_dir / f"oidc-provider-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> OidcProvider:
        folder = installed("the sign-in test's OpenID provider")
        command = [
            "node",
            "oidc_provider.mjs",
            str(self.port),
            CLIENT_ID,
            CLIENT_SECRET,
            f"{self.dashboard_url}/auth/callback",
            f"{self.dashboard_url}/signed-out",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OpenID provider exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).is_success:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the OpenID provider did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
