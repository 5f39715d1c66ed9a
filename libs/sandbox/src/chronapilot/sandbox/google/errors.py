"""Google's two error shapes: the Calendar API envelope and the OAuth endpoints' flat JSON.

- :class:`ApiError` is raised by Calendar API handlers and rendered by :func:`api_error_response`
  as ``{"error": {"code", "message", "errors": [{"domain", "reason", "message", ...}],
  "status"}}``.
- :class:`OAuthError` is raised by the token, revoke and userinfo endpoints and rendered by
  :func:`oauth_error_response` as ``{"error": ..., "error_description": ...}``.
- The constructors below name the errors the emulator produces, with Google's wording.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'


@dataclass
class ApiError(Exception):
    """A Calendar API error; ``include_status`` is off only where Google omits ``status``."""

    code: int
    reason: str
    message: str
    domain: str = "global"
    item_message: str | None = None
    location: str | None = None
    location_type: str | None = None
    include_status: bool = True

    def body(self) -> dict[str, Any]:
        """The JSON envelope."""
        item: dict[str, Any] = {
            "message": self.item_message or self.message,
            "domain": self.domain,
            "reason": self.reason,
        }
        if self.location is not None:
            item["location"] = self.location
            item["locationType"] = self.location_type
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item]}
        if self.include_status and self.code in _STATUS_NAMES:
            error["status"] = _STATUS_NAMES[self.code]
        return {"error": error}


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response with Google's content type."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(status=status, body=body, headers={"Content-Type": JSON_CONTENT_TYPE})


def api_error_response(error: ApiError) -> web.Response:
    """Render ``error``; 401s carry ``WWW-Authenticate`` as Google's do."""
    response = json_response(error.body(), status=error.code)
    if error.code == 401:
        response.headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
    return response


def invalid_credentials() -> ApiError:
    """401 for an unknown, expired or revoked access token."""
    return ApiError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential. "
        "See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        item_message="Invalid Credentials",
        location="Authorization",
        location_type="header",
    )


def login_required() -> ApiError:
    """401 for a request without any credential."""
    return ApiError(
        401,
        "required",
        "Request is missing required authentication credential. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. "
        "See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        item_message="Login Required.",
        location="Authorization",
        location_type="header",
    )


def insufficient_permissions() -> ApiError:
    """403 when the token's scopes do not cover the call."""
    return ApiError(
        403,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
        item_message="Insufficient Permission",
    )


def not_found() -> ApiError:
    """404 for an unknown calendar or event."""
    return ApiError(404, "notFound", "Not Found")


def deleted() -> ApiError:
    """410 for an event that was already deleted."""
    return ApiError(410, "deleted", "Resource has been deleted")


def full_sync_required() -> ApiError:
    """410 for an unknown or expired sync token (Google's body has no ``status`` here)."""
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        include_status=False,
    )


def bad_request(message: str, reason: str = "badRequest") -> ApiError:
    """400 for a request the API refuses."""
    return ApiError(400, reason, message)


def invalid_value(message: str) -> ApiError:
    """400 ``invalid`` for a parameter or field with a bad value."""
    return ApiError(400, "invalid", message)


def required_field(message: str) -> ApiError:
    """400 ``required`` for a missing field."""
    return ApiError(400, "required", message)


def time_range_empty(parameter: str | None = None) -> ApiError:
    """400 ``timeRangeEmpty`` (domain ``calendar``): an end not after its start."""
    return ApiError(
        400,
        "timeRangeEmpty",
        "The specified time range is empty.",
        domain="calendar",
        location=parameter,
        location_type="parameter" if parameter else None,
    )


def duplicate() -> ApiError:
    """409 for an insert with an id that exists."""
    return ApiError(409, "duplicate", "The requested identifier already exists.")


def condition_not_met() -> ApiError:
    """412 for an ``If-Match`` etag that does not match."""
    return ApiError(412, "conditionNotMet", "Precondition Failed", item_message="Precondition Failed")


def injected_failure(status: int) -> ApiError:
    """The body for a status injected by the fault middleware."""
    if status == 429 or status == 403:
        return ApiError(status, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
    if status >= 500:
        return ApiError(status, "backendError", "Backend Error")
    return ApiError(status, "badRequest", "Bad Request")


@dataclass
class OAuthError(Exception):
    """An OAuth endpoint error: ``{"error": error, "error_description": description}``."""

    status: int
    error: str
    description: str

    def response(self) -> web.Response:
        """Render as Google's flat JSON."""
        return json_response({"error": self.error, "error_description": self.description}, status=self.status)


def oauth_error_response(error: OAuthError) -> web.Response:
    """Render an :class:`OAuthError`."""
    return error.response()
