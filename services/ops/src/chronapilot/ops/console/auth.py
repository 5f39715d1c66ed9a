"""Who may use the console: outside ``development`` everything but ``/healthz``, ``/readyz``,
the login form and the stylesheet needs ``CHRONAPILOT_OPS_TOKEN``, given as
``Authorization: Bearer <token>`` or through the login form, which sets a session cookie
(HttpOnly, SameSite=Strict, signed with a key derived from the token, so every replica accepts
it and changing the token ends every session). Comparisons are constant-time.

POST actions carry a CSRF token tied to the session cookie (or come with the bearer header,
which a browser never adds by itself). In ``development`` with no token the console is open on
its loopback port; the session cookie is then issued on the first page, only for CSRF.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

SESSION_COOKIE = "chronapilot_ops_session"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/login", "/static/console.css"})


@dataclass(frozen=True)
class Gate:
    """The console's credentials check: ``token`` None means open (development only)."""

    token: str | None
    key: bytes
    session_ttl_s: float

    @classmethod
    def build(cls, token: str | None, session_ttl_s: float) -> Gate:
        key = (
            hmac.new(token.encode(), b"chronapilot-ops-session", hashlib.sha256).digest()
            if token
            else secrets.token_bytes(32)
        )
        return cls(token, key, session_ttl_s)

    def token_matches(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def bearer_ok(self, request: web.Request) -> bool:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(offered.strip())

    def new_session(self) -> str:
        issued = f"{int(time.time())}.{secrets.token_urlsafe(12)}"
        return f"{issued}.{self._sign('session', issued)}"

    def session_ok(self, value: str | None) -> bool:
        if not value or value.count(".") != 2:
            return False
        issued_at, nonce, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign("session", f"{issued_at}.{nonce}")):
            return False
        return issued_at.isdigit() and time.time() - int(issued_at) < self.session_ttl_s

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf", session)

    def csrf_ok(self, session: str | None, offered: str) -> bool:
        return bool(session) and hmac.compare_digest(offered, self.csrf_token(session or ""))

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


GATE = web.AppKey("ops_gate", Gate)


def set_session_cookie(response: web.StreamResponse, request: web.Request, value: str, ttl_s: float) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(ttl_s),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )


def authenticated(request: web.Request) -> bool:
    gate = request.app[GATE]
    if gate.token is None:
        return True
    return gate.bearer_ok(request) or gate.session_ok(request.cookies.get(SESSION_COOKIE))


def session_of(request: web.Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if request.app[GATE].session_ok(value) else None


@web.middleware
async def require_token(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """401 for API-style callers (``/metrics``, a bearer header), a redirect to the login form
    for a browser; ``OPEN_PATHS`` always pass."""
    if request.path in OPEN_PATHS or authenticated(request):
        return await handler(request)
    wants_page = (
        request.method == "GET" and request.path != "/metrics" and "Authorization" not in request.headers
    )
    if wants_page:
        raise web.HTTPSeeOther("/login")
    raise web.HTTPUnauthorized(
        text="The ops console needs CHRONAPILOT_OPS_TOKEN as a bearer token.",
        headers={"WWW-Authenticate": 'Bearer realm="chronapilot-ops"'},
    )
