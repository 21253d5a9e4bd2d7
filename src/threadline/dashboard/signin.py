"""Sign-in with OpenID Connect: who is looking, in which role, for which tenant.

With ``THREADLINE_OIDC_ISSUER`` set, every page and every Dash request needs a signed-in person.
``/login`` sends the browser to the provider (authorization code flow with PKCE, by Authlib's Flask
client: discovery from the issuer's ``.well-known/openid-configuration``, state, nonce and the ID
token's signature, issuer, audience and expiry checked by it, not by us); ``/auth/callback`` takes
the person from the ID token: subject, e-mail, the role (``THREADLINE_OIDC_ROLES_CLAIM``, the highest
of viewer, operator, admin it lists) and the tenant (``THREADLINE_OIDC_TENANT_CLAIM``), which must be
the tenant of the dashboard's keys. The person lives in Flask's signed session cookie
(``THREADLINE_SESSION_SECRET``) for ``THREADLINE_SESSION_HOURS``; ``/logout`` (a POST) clears it and
ends the provider's session too when it has an ``end_session_endpoint``.

What a person may do follows the role, on the server: the dashboard reads the collector with the
key of their role (viewers' key: read only), draws actions disabled for viewers, and the callback
that records an action answers 403 to a viewer however it is called (``require_acting``). Without
an issuer nobody signs in and the dashboard behaves as before, saying so on its overview.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from html import escape
from typing import Any, Literal, cast, get_args
from urllib.parse import urlencode, urlsplit

import dash
import flask
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from dash import Input, Output, html
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from .client import ApiError, QueryClient
from .components import icon
from .config import DashboardSettings

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)  # in order: each may what the ones before it may
ACTING_ROLES: frozenset[Role] = frozenset({"operator", "admin"})
SCOPE = "openid email profile"
SETTINGS = "THREADLINE_SIGN_IN"  # where the app's SignIn is kept in Flask's config
LOGIN, CALLBACK, LOGOUT, SIGNED_OUT = "login", "auth/callback", "logout", "signed-out"
# Served to anyone: what a page needs before sign-in, and holds no data.
PUBLIC = (LOGIN, CALLBACK, SIGNED_OUT, "assets/", "_dash-component-suites/", "_favicon.ico")


@dataclass(frozen=True)
class Person:
    """The signed-in person, as their ID token said at sign-in."""

    subject: str
    email: str
    name: str
    role: Role
    tenant: str
    expires: float  # seconds since the epoch

    @property
    def may_act(self) -> bool:
        return self.role in ACTING_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def for_audit(self) -> str:
        """The person as the audit trail names them: the e-mail to read, the subject that never changes."""
        return f"{self.email} (sub {self.subject})" if self.email else f"sub {self.subject}"


def roles_in(claim: object) -> Role | None:
    """The highest of our roles a claim lists (a list, or a space- or comma-separated string)."""
    values = claim.replace(",", " ").split() if isinstance(claim, str) else claim
    held = {str(value) for value in values} if isinstance(values, list | tuple) else set()
    return next((role for role in reversed(ROLES) if role in held), None)


class SignIn:
    """OpenID Connect sign-in on the dashboard's Flask server, and the key each role reads with."""

    def __init__(self, settings: DashboardSettings, base_path: str) -> None:
        self.settings = settings
        self.base_path = base_path
        issuer = cast(str, settings.oidc_issuer)
        self.issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        viewers = settings.api_key
        operators = settings.operator_api_key
        self.keys: dict[Role, str | None] = {
            "viewer": viewers,
            "operator": operators,
            "admin": settings.admin_api_key or operators,
        }
        self._oauth: Any = None

    def install(self, server: flask.Flask) -> None:
        """The routes, the gate in front of every request, and the session's cookie."""
        server.secret_key = self.settings.session_secret
        server.config.update(
            SESSION_COOKIE_NAME="threadline_session",
            SESSION_COOKIE_HTTPONLY=True,
            # Lax: the provider's redirect back to /auth/callback is a top-level navigation from
            # another site, which must carry the cookie holding the state and PKCE verifier.
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_PATH=self.base_path,
            PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=self.settings.session_hours),
        )
        server.session_interface = _SessionCookie()
        server.config[SETTINGS] = self
        oauth = OAuth(server)
        self._oauth = oauth.register(
            name="threadline",
            client_id=self.settings.oidc_client_id,
            client_secret=self.settings.oidc_client_secret,
            server_metadata_url=f"{self.settings.oidc_issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
        )
        route = self.base_path
        server.add_url_rule(route + LOGIN, "threadline_login", self.login)
        server.add_url_rule(route + CALLBACK, "threadline_callback", self.callback)
        server.add_url_rule(route + LOGOUT, "threadline_logout", self.logout, methods=["POST"])
        server.add_url_rule(route + SIGNED_OUT, "threadline_signed_out", self.signed_out)
        server.before_request(self.gate)

    # --- routes ---------------------------------------------------------------------------------

    def gate(self) -> Response | None:
        """Every request but the public ones needs a person whose session has not expired."""
        path = flask.request.path
        if any(path.startswith(self.base_path + public) for public in PUBLIC):
            return None
        if person() is not None:
            return None
        if path.startswith(self.base_path + "_dash-"):
            response = flask.jsonify(error="signed_out", message="sign in again: the session has ended")
            response.status_code = 401
            return response
        target = flask.request.full_path if flask.request.query_string else path
        return flask.redirect(f"{self.base_path}{LOGIN}?{urlencode({'next': target})}")

    def login(self) -> Response:
        """Off to the provider; back at /auth/callback, then at the page asked for."""
        flask.session.clear()
        flask.session["next"] = self._local(flask.request.args.get("next", ""))
        return cast(Response, self._oauth.authorize_redirect(self._url(CALLBACK)))

    def callback(self) -> Response | tuple[str, int]:
        """The provider's answer: the person, if their token holds and their role and tenant fit."""
        try:
            token = self._oauth.authorize_access_token()
        except OAuthError as error:
            return self._page("Sign-in failed", f"The provider refused: {error.description or error}."), 400
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        role = roles_in(claims.get(self.settings.oidc_roles_claim))
        tenant = str(claims.get(self.settings.oidc_tenant_claim) or "")
        email = str(claims.get("email") or "")
        if role is None:
            return self._refused(
                f"Your account ({email or claims.get('sub')}) has no Threadline role: its "
                f"'{self.settings.oidc_roles_claim}' claim lists none of {', '.join(ROLES)}."
            )
        served = self._tenant_of(role)
        if served is None:
            return self._page("Sign-in failed", "The collector did not answer; try again shortly."), 503
        if tenant != served:
            return self._refused(
                f"Your account's tenant ({tenant or 'none'}) is not the one this dashboard serves "
                f"({served or 'the anonymous tenant'})."
            )
        target = str(flask.session.get("next") or self.base_path)
        flask.session.clear()
        flask.session.permanent = True
        flask.session["person"] = asdict(
            Person(
                subject=str(claims["sub"]),
                email=email,
                name=str(claims.get("name") or email or claims["sub"]),
                role=role,
                tenant=tenant,
                expires=time.time() + self.settings.session_hours * 3600,
            )
        )
        flask.session["id_token"] = token.get("id_token", "")
        return flask.redirect(target)

    def logout(self) -> Response:
        """The session cleared here, and at the provider when it says where (RP-initiated logout)."""
        id_token = flask.session.get("id_token", "")
        flask.session.clear()
        try:
            end = self._oauth.load_server_metadata().get("end_session_endpoint")
        except Exception:  # the provider is down: signed out here all the same
            end = None
        if not end:
            return flask.redirect(self.base_path + SIGNED_OUT)
        query = {
            "client_id": self.settings.oidc_client_id,
            "post_logout_redirect_uri": self._url(SIGNED_OUT),
            **({"id_token_hint": id_token} if id_token else {}),
        }
        return flask.redirect(f"{end}?{urlencode(query)}")

    def signed_out(self) -> str:
        return self._page("Signed out", "You are signed out of Threadline.")

    # --- helpers --------------------------------------------------------------------------------

    def key(self) -> str | None:
        """The key the current request reads the collector with: the one of the person's role."""
        current = person()
        return self.keys[current.role if current else "viewer"] or self.keys["viewer"]

    def _tenant_of(self, role: Role) -> str | None:
        """The tenant of the key a role reads with (None: the collector did not say)."""
        client = QueryClient(self.settings.api, api_key=self.keys[role] or self.keys["viewer"])
        try:
            return client.whoami()["tenant"]
        except ApiError:
            return None
        finally:
            client.close()

    def _url(self, route: str) -> str:
        return flask.request.host_url.rstrip("/") + self.base_path + route

    def _local(self, target: str) -> str:
        """Only a path of this dashboard: ``next`` never sends anyone to another site."""
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not target.startswith(self.base_path) or "\\" in target:
            return self.base_path
        return target

    def _refused(self, reason: str) -> tuple[str, int]:
        flask.session.clear()
        return self._page("Not allowed", reason), 403

    def _page(self, title: str, message: str) -> str:
        """A plain page (no script, no inline style) for sign-in's answers."""
        again = f'<a id="sign-in-again" href="{self.base_path}{LOGIN}">Sign in</a>'
        return (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · '
            f'Threadline</title><link rel="stylesheet" href="{self.base_path}assets/threadline.css">'
            f'</head><body><main class="tl-signin"><h1>{escape(title)}</h1>'
            f'<p id="sign-in-message">{escape(message)}</p><p>{again}</p></main></body></html>'
        )


class _SessionCookie(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over HTTPS (gunicorn takes
    X-Forwarded-Proto from a proxy on the same host), so it never travels in clear text after."""

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        return flask.request.is_secure


def active() -> SignIn | None:
    """The app's sign-in, or None when it has none (no issuer configured)."""
    return cast(SignIn | None, flask.current_app.config.get(SETTINGS)) if flask.has_app_context() else None


def person() -> Person | None:
    """The signed-in person of the current request; None when nobody is (or sign-in is off)."""
    if active() is None or not flask.has_request_context():
        return None
    values = flask.session.get("person")
    if not isinstance(values, dict):
        return None
    signed_in = Person(**values)
    if signed_in.expires <= time.time():
        flask.session.clear()
        return None
    return signed_in


def require_acting() -> Person | None:
    """For the callback that records an action: 403 to a person who may not act (None: no sign-in)."""
    current = person()
    if active() is not None and (current is None or not current.may_act):
        role = current.role if current else "nobody signed in"
        raise Forbidden(f"your role ({role}) may not acknowledge, resolve or reopen")
    return current


def key_chooser() -> Callable[[], str | None]:
    """For the QueryClient: the current person's key (the viewers' key outside a request)."""

    def choose() -> str | None:
        sign_in = active()
        return sign_in.key() if sign_in else None

    return choose


def register(app: dash.Dash) -> None:
    """Who is signed in, in which role, and the sign-out button, in the shell's toolbar."""

    @app.callback(Output("signed-in", "children"), Input("url", "pathname"))
    def signed_in(_pathname: str | None) -> Any:
        current, sign_in = person(), active()
        if current is None or sign_in is None:
            return None
        return [
            html.Span(
                [icon("person-circle"), current.name],
                id="signed-in-person",
                title=f"{current.email} · tenant {current.tenant}",
            ),
            html.Span(current.role, id="signed-in-role", className="tl-badge"),
            html.Form(
                html.Button(
                    [icon("box-arrow-right"), "Sign out"],
                    type="submit",
                    id="sign-out",
                    className="btn btn-link",
                ),
                action=sign_in.base_path + LOGOUT,
                method="POST",
                className="tl-sign-out",
            ),
        ]


def unprotected_note(client: QueryClient) -> Any:
    """On the overview, without sign-in: that whoever reaches the dashboard sees its tenant's data."""
    if active() is not None:
        return None
    try:
        tenant = client.whoami()["tenant"]
    except ApiError:
        tenant = None
    whose = f"tenant {tenant}'s" if tenant else "this collector's"
    return html.Div(
        [
            icon("unlock", "tl-callout-icon"),
            html.Div(
                [
                    html.Strong("Sign-in is not configured: "),
                    f"anyone who reaches this dashboard sees {whose} data. ",
                    "Set THREADLINE_OIDC_ISSUER to have people sign in (see README, Security).",
                ]
            ),
        ],
        className="tl-callout",
        id="sign-in-off",
    )
