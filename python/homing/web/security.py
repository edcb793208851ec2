"""The dashboard's safety rules: who may look, who may act, and where it may listen.

- Auth comes from the environment only (never a command-line flag, which ``ps``
  shows): ``HOMING_DASHBOARD_TOKEN`` (a bearer token, or typed once into the
  login page, which sets a session cookie), and/or ``HOMING_DASHBOARD_USER`` with
  ``HOMING_DASHBOARD_PASSWORD`` (HTTP Basic). Comparisons are constant-time.
- Without auth it may only listen on loopback, and only answers requests whose
  Host is a loopback name: a page on another site cannot reach it through DNS
  rebinding.
- Every POST carries a CSRF token bound to a random cookie by an HMAC with a
  per-process key (and a foreign Origin is refused outright); cookies are
  HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_ENV = "HOMING_DASHBOARD_TOKEN"
USER_ENV = "HOMING_DASHBOARD_USER"
PASSWORD_ENV = "HOMING_DASHBOARD_PASSWORD"
CSRF_COOKIE = "homing_csrf"
SESSION_COOKIE = "homing_session"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class SetupError(Exception):
    """The dashboard refuses to start with these settings (printed, exit status 2)."""


@dataclass(frozen=True)
class Auth:
    """Who may use the dashboard; ``enabled`` is False when nothing is configured."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Auth:
        env = os.environ if env is None else env
        token = env.get(TOKEN_ENV) or None
        user, password = env.get(USER_ENV) or None, env.get(PASSWORD_ENV) or None
        if (user is None) != (password is None):
            raise SetupError(f"set both {USER_ENV} and {PASSWORD_ENV}, or neither")
        if token is not None and len(token) < 16:
            raise SetupError(f"{TOKEN_ENV} must be at least 16 characters (a random secret)")
        return cls(token, user, password)

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.user is not None

    @property
    def basic(self) -> bool:
        return self.user is not None


def is_loopback(host: str) -> bool:
    """Whether a bind address or Host name is this machine only."""
    host = host.strip().lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(bind: str, auth: Auth) -> None:
    """No auth: only loopback. Another address would hand the dead letters to anyone."""
    if not auth.enabled and not is_loopback(bind):
        raise SetupError(
            f"refusing to listen on {bind} without auth: set {TOKEN_ENV}, or {USER_ENV} and "
            f"{PASSWORD_ENV}, or bind to 127.0.0.1 (see docs/dashboard.md)")


def host_name(host_header: str) -> str:
    """The name part of a Host header ('[::1]:8080' -> '[::1]', 'a:80' -> 'a')."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Keys:
    """The per-process secret behind the CSRF tokens and session cookies.

    Random at each start: a restart signs everyone out, which is the safe default.
    """

    def __init__(self) -> None:
        self.secret = secrets.token_bytes(32)

    def _mac(self, what: str, value: str) -> str:
        return hmac.new(self.secret, f"{what}:{value}".encode(), hashlib.sha256).hexdigest()

    def csrf_for(self, cookie: str) -> str:
        return self._mac("csrf", cookie)

    def csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.csrf_for(cookie), token)

    def session_for(self, token: str) -> str:
        return self._mac("session", token)


def new_cookie_value() -> str:
    return secrets.token_hex(16)


def authorized(auth: Auth, keys: Keys, headers: Mapping[str, str],
               cookies: Mapping[str, str]) -> bool:
    """Bearer token, session cookie (from the login page) or Basic credentials."""
    if not auth.enabled:
        return True
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if auth.token is not None:
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              auth.token.encode()):
            return True
        session = cookies.get(SESSION_COOKIE)
        if session and hmac.compare_digest(session, keys.session_for(auth.token)):
            return True
    if auth.basic and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        assert auth.user is not None and auth.password is not None
        # Both compared, always: no early exit that tells a right user name by its timing.
        ok_user = hmac.compare_digest(user.encode(), auth.user.encode())
        ok_password = hmac.compare_digest(password.encode(), auth.password.encode())
        return ok_user and ok_password
    return False


def token_ok(auth: Auth, given: str) -> bool:
    return auth.token is not None and hmac.compare_digest(given.encode(), auth.token.encode())
