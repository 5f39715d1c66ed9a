"""What every Graph handler shares: bearer authentication, the current user and token, scope
checks, Graph error responses raised as exceptions, JSON responses, paging and `Prefer` headers.

Every `/v1.0/` route wants `Authorization: Bearer <access token>`; an empty, unknown or expired
token answers 401 `InvalidAuthenticationToken` with a `WWW-Authenticate` header.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .credentials import AccessToken
from .delta import parse_prefer
from .errors import graph_error
from .resources import Presentation
from .state import MicrosoftState, state_key
from .store import User
from .times import InvalidTime, zone

token_key = web.RequestKey("microsoft_access_token", AccessToken)
READ_SCOPES = ("Calendars.Read", "Calendars.ReadWrite")
WRITE_SCOPES = ("Calendars.ReadWrite",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def unauthorized(state: MicrosoftState, message: str) -> web.Response:
    challenge = (
        'Bearer realm="", authorization_uri="'
        f'{state.base_url}/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
    )
    return graph_error(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": challenge})


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate every `/v1.0/` request; the token record is put on the request."""
    if not request.path.startswith(("/v1.0/", "/oidc/")):
        return await handler(request)
    state = request.app[state_key]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    record, message = state.identity.access_token(token.strip(), state.clock.now())
    if record is None:
        return unauthorized(state, message)
    request[token_key] = record
    return await handler(request)


def access_token_of(request: web.Request) -> AccessToken:
    record: AccessToken = request[token_key]
    return record


def require_scope(request: web.Request, scopes: tuple[str, ...]) -> None:
    if not any(s in access_token_of(request).scopes for s in scopes):
        raise fail(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def fail(status: int, code: str | None = None, message: str | None = None) -> GraphFailure:
    return GraphFailure(graph_error(status, code, message))


class GraphFailure(Exception):
    """Carries a ready Graph error response out of a handler (see `graph_failures`)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@web.middleware
async def graph_failures(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GraphFailure as failure:
        return failure.response


def state_of(request: web.Request) -> MicrosoftState:
    return request.app[state_key]


def current_user(request: web.Request) -> User:
    return state_of(request).store.user(access_token_of(request).user_id)


def json_response(
    data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data, separators=(",", ":")).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def context_url(state: MicrosoftState, fragment: str) -> str:
    return f"{state.base_url}/v1.0/$metadata#{fragment}"


def paging(request: web.Request, default_top: int) -> tuple[int, int]:
    try:
        top = int(request.query.get("$top", default_top))
        skip = int(request.query.get("$skip", 0))
    except ValueError:
        raise fail(400, "BadRequest", "Invalid $top or $skip value.") from None
    if top < 1 or skip < 0:
        raise fail(400, "BadRequest", "Invalid $top or $skip value.")
    return min(top, 1000), skip


def presentation(request: web.Request) -> tuple[Presentation, dict[str, str]]:
    """The `Prefer` header's presentation preferences, and all its preferences."""
    prefs = parse_prefer(request.headers.getall("Prefer", []))
    tz = prefs.get("outlook.timezone", "")
    if tz:
        try:
            zone(tz)
        except InvalidTime:
            tz = ""
    text_body = prefs.get("outlook.body-content-type", "").lower() == "text"
    return Presentation(tz, text_body), prefs


def applied(prefs_applied: list[str]) -> dict[str, str]:
    return {"Preference-Applied": ", ".join(prefs_applied)} if prefs_applied else {}


async def read_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise fail(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type "
            "header is set and payload is of valid JSON format.",
        ) from None
    if not isinstance(data, dict):
        raise fail(400, "BadRequest", "The request body must be a JSON object.")
    return data
