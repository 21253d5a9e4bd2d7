"""Sign-in with OpenID Connect, end to end: a real provider (npm's certified oidc-provider) on
loopback, the dashboard under gunicorn, a collector that requires keys, and headless Chromium
signing in through the provider's login form.

A viewer sees but cannot act, neither from the page nor by sending the action's request with their
cookie; an operator acts and the audit trail names them (e-mail and subject from the ID token);
signing out ends both sessions; an expired session must sign in again; a person without a role, or
of another tenant, is refused.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.dashboard.browser import Browser, DashboardProcess
from tests.dashboard.dash_requests import submit_action
from tests.support.collector_process import CollectorProcess
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider
from tests.support.otlp_receiver import free_port

pytestmark = pytest.mark.slow

INGEST, VIEWERS, OPERATORS = "tl_sso_ingest", "tl_sso_viewers", "tl_sso_operators"
KEYS = f"""
keys:
  - {{name: integrations, key: {INGEST}, tenant: acme, roles: [ingest]}}
  - {{name: dashboard-viewers, key: {VIEWERS}, tenant: acme, roles: [read]}}
  - {{name: dashboard-operators, key: {OPERATORS}, tenant: acme, roles: [read, act]}}
"""
KEY = "OPP-SSO-1"
OTTO = "otto.operator@acme.example (sub otto)"


@pytest.fixture(scope="module")
def collector(workdir: Path) -> Iterator[CollectorProcess]:
    keys = workdir / "keys.yaml"
    keys.write_text(KEYS)
    running = CollectorProcess(
        store_dir=workdir / "store", env={"THREADLINE_API_KEYS": str(keys)}, isolated=True
    ).start()
    event = {
        "correlation_id": KEY,
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
    }
    response = httpx.post(
        running.url + "/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {INGEST}"}
    )
    assert response.status_code == 200, response.text
    try:
        yield running
    finally:
        running.stop()


def _signed_in_dashboard(
    collector: CollectorProcess, workdir: Path, **variables: str
) -> tuple[DashboardProcess, OidcProvider]:
    port = free_port()
    provider = OidcProvider(f"http://127.0.0.1:{port}", workdir).start()
    environment = {
        "THREADLINE_OIDC_ISSUER": provider.issuer,
        "THREADLINE_OIDC_CLIENT_ID": CLIENT_ID,
        "THREADLINE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "THREADLINE_SESSION_SECRET": "a-session-secret-for-the-tests-0123456789",
        "THREADLINE_OPERATOR_API_KEY": OPERATORS,
        **variables,
    }
    try:
        dashboard = DashboardProcess(collector.url, workdir, port=port, api_key=VIEWERS, env=environment)
        return dashboard.start(), provider
    except BaseException:
        provider.stop()
        raise


@pytest.fixture(scope="module")
def dashboard(collector: CollectorProcess, workdir: Path) -> Iterator[DashboardProcess]:
    running, provider = _signed_in_dashboard(collector, workdir)
    try:
        yield running
    finally:
        running.stop()
        provider.stop()


@pytest.fixture
def browser(dashboard: DashboardProcess) -> Iterator[Browser]:
    """A browser of its own per test: no cookie from another person's session."""
    window = Browser(dashboard.url)
    try:
        yield window
    finally:
        window.quit()


def sign_in(browser: Browser, name: str, path: str = "/") -> None:
    """Open ``path``, be sent to the provider, and sign in there with its own form."""
    browser.driver.get(browser.base_url + path)
    browser.visible("#username").send_keys(name)
    browser.visible("#password").send_keys(f"{name}-pw")
    browser.click("#sign-in")


def cookies(browser: Browser) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in browser.driver.get_cookies()}


def audit(collector: CollectorProcess) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{collector.url}/api/audit",
        params={"transaction": KEY},
        headers={"Authorization": f"Bearer {VIEWERS}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def submit_request(dashboard: DashboardProcess, jar: dict[str, str], action: str) -> httpx.Response:
    """The request the dialog's "Mark resolved" (or "Reopen") sends, with a person's cookie, and a
    typed name the dashboard must ignore."""
    request = {"action": action, "key": KEY}
    return submit_action(dashboard.url, request, "Booked by hand in the ERP", "Mallory, typed", jar)


def test_a_person_signs_in_at_the_provider_and_the_dashboard_says_who_they_are(
    browser: Browser, dashboard: DashboardProcess
) -> None:
    assert httpx.get(dashboard.url + "/").status_code == 302  # nothing without signing in
    assert (
        httpx.post(
            dashboard.url + "/_dash-update-component", json={}, headers={"Origin": dashboard.url}
        ).status_code
        == 401
    )

    sign_in(browser, "vera", f"/transactions/{KEY}")

    browser.visible("#transaction-state")
    assert browser.path() == f"/transactions/{KEY}"  # back where they asked to go
    assert "vera" in browser.text("#signed-in-person")
    assert browser.text("#signed-in-role") == "viewer"
    browser.open("/", ready="#page > *")
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#sign-in-off")


def test_the_provider_refuses_a_wrong_password(browser: Browser) -> None:
    browser.driver.get(browser.base_url + "/")
    browser.visible("#username").send_keys("otto")
    browser.visible("#password").send_keys("guess")
    browser.click("#sign-in")
    assert "Wrong name or password" in browser.text("#login-error")
    assert "threadline_session" not in cookies(browser) or not browser.driver.find_elements(
        By.ID, "signed-in-person"
    )


def test_a_viewer_sees_actions_disabled_and_cannot_act_through_the_api(
    browser: Browser, dashboard: DashboardProcess, collector: CollectorProcess
) -> None:
    sign_in(browser, "vera", f"/transactions/{KEY}")
    button = browser.visible(".tl-resolve-action")
    assert not button.is_enabled()
    assert "viewer role, which may look but not act" in browser.text("#actions-disabled")
    before = audit(collector)

    answer = submit_request(dashboard, cookies(browser), "resolve")

    assert answer.status_code == 403, answer.text
    assert audit(collector) == before


def test_an_operator_acts_and_the_audit_trail_names_them_not_a_typed_name(
    browser: Browser, dashboard: DashboardProcess, collector: CollectorProcess
) -> None:
    sign_in(browser, "otto", f"/transactions/{KEY}")
    assert browser.text("#signed-in-role") == "operator"
    browser.click(".tl-resolve-action")
    assert "as you signed in" in browser.text("#action-signed-in")  # waits for the dialog
    assert not browser.driver.find_element(By.ID, "action-operator").is_displayed()  # no name to type
    browser.visible("#action-comment").send_keys("Booked by hand in the ERP")
    browser.click("#action-submit")
    browser.visible("#action-result")

    latest = audit(collector)[0]
    assert (latest["action"], latest["operator"], latest["actor"]) == ("resolve", OTTO, "dashboard-operators")
    assert OTTO in browser.wait_text("#audit-trail", OTTO)

    # The same request as the viewer's above, with the operator's cookie: the request itself is sound.
    answer = submit_request(dashboard, cookies(browser), "reopen")
    assert answer.status_code == 200, answer.text
    latest = audit(collector)[0]
    assert (latest["action"], latest["operator"]) == ("reopen", OTTO)  # the typed "Mallory" ignored

    browser.open("/alerts", ready="#alert-rules-admins-only")  # the rules in force are an admin's
    assert not browser.driver.find_elements(By.ID, "alerts-receivers")


def test_an_action_from_another_site_is_refused(
    browser: Browser, dashboard: DashboardProcess, collector: CollectorProcess
) -> None:
    sign_in(browser, "otto", "/")
    browser.visible("#signed-in-person")
    before = audit(collector)
    jar = cookies(browser)

    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {}):
        with httpx.Client(base_url=dashboard.url, cookies=jar, timeout=30) as client:
            answer = client.post(
                "/_dash-update-component", json={"output": "action-toast.children"}, headers=headers
            )
        assert answer.status_code == 403, (headers, answer.text)
        assert answer.json()["error"] == "cross_site"
    assert audit(collector) == before


def test_signing_out_ends_the_session_here_and_at_the_provider(
    browser: Browser, dashboard: DashboardProcess
) -> None:
    sign_in(browser, "otto", "/")
    browser.visible("#signed-in-person")

    browser.click("#sign-out")
    # The provider asks whether to sign out of it too (RP-initiated logout), then comes back.
    browser.click("button[name=logout][value=yes]")
    assert "signed out" in browser.text("#sign-in-message")

    assert "person" not in str(cookies(browser).get("threadline_session", ""))
    browser.driver.get(browser.base_url + "/")
    browser.visible("#username")  # the provider asks again: its session ended too


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("noel", "has no Threadline role"),
        ("nina", "tenant (globex) is not the one this dashboard serves (acme)"),
    ],
)
def test_a_person_without_a_role_or_of_another_tenant_is_refused(
    browser: Browser, name: str, reason: str
) -> None:
    sign_in(browser, name, "/")
    assert reason in browser.text("#sign-in-message")
    browser.driver.get(browser.base_url + "/")
    assert not browser.driver.find_elements(By.ID, "signed-in-person")


def test_an_expired_session_signs_in_again(collector: CollectorProcess, workdir: Path) -> None:
    hours = 4 / 3600  # four seconds
    short, provider = _signed_in_dashboard(collector, workdir, THREADLINE_SESSION_HOURS=str(hours))
    window = Browser(short.url)
    try:
        sign_in(window, "otto", "/queue")
        window.visible("#signed-in-person")
        jar = cookies(window)
        with httpx.Client(base_url=short.url, cookies=jar, headers={"Origin": short.url}) as client:
            assert client.get("/queue").status_code == 200
            time.sleep(4.5)
            gone = client.get("/queue")
            assert gone.status_code == 302
            assert gone.headers["location"] == "/login?next=%2Fqueue"
            assert client.post("/_dash-update-component", json={}).status_code == 401
    finally:
        window.quit()
        short.stop()
        provider.stop()


def test_pages_pass_the_content_security_policy(browser: Browser, dashboard: DashboardProcess) -> None:
    sign_in(browser, "ada", "/")
    browser.visible("#signed-in-person")
    for path in ("/", "/queue", "/alerts", "/systems", "/workflows/quote-to-cash", f"/transactions/{KEY}"):
        browser.open(path)
    browser.open("/alerts", ready="#alerts-receivers")  # an admin's
    headers = httpx.get(dashboard.url + "/login", follow_redirects=False).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")
    assert headers["referrer-policy"] == "same-origin"
    violations = [
        entry["message"]
        for entry in browser.driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert violations == []


def test_sign_in_starts_with_pkce_and_a_session_cookie_scripts_cannot_read(
    dashboard: DashboardProcess,
) -> None:
    plain = httpx.get(dashboard.url + "/login")
    assert plain.status_code == 302
    assert "code_challenge_method=S256" in plain.headers["location"]
    assert "code_challenge=" in plain.headers["location"]
    cookie = plain.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # Behind a TLS-terminating proxy on the same host, the cookie is marked Secure.
    over_https = httpx.get(dashboard.url + "/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in over_https.headers["set-cookie"]
