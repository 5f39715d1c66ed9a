"""The two error shapes Microsoft answers with.

- Graph: `{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`.
- Identity platform (token endpoint): flat `{"error", "error_description": "AADSTSnnnnn: … Trace ID:
  … Correlation ID: … Timestamp: …", "error_codes", "timestamp", "trace_id", "correlation_id",
  "error_uri"}`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from aiohttp import web

GRAPH_STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is malformed or incorrect."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    410: ("SyncStateNotFound", "The sync state generation is not found."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("UnknownError", "An unknown error has occurred."),
    502: ("UnknownError", "Bad gateway."),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
    504: ("UnknownError", "The gateway timed out."),
}


def graph_error(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    client_request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A Graph error response with the envelope of the reference."""
    default_code, default_message = GRAPH_STATUS_CODES.get(status, ("UnknownError", "Error."))
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code or default_code,
            "message": message or default_message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }
    response = web.json_response(body, status=status, headers=headers)
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = client_request_id or request_id
    return response


def render_fault(request: web.Request, status: int) -> web.StreamResponse:
    """The body an injected fault answers with: the identity platform's shape on its routes,
    Graph's everywhere else."""
    if "/oauth2/" in request.path:
        error = "temporarily_unavailable" if status >= 500 or status == 429 else "invalid_request"
        return aadsts_error(
            status, error, 50196 if status == 429 else 90033, "The service is throttled or unavailable."
        )
    return graph_error(status)


def aadsts_error(status: int, error: str, code: int, text: str, suberror: str | None = None) -> web.Response:
    """An identity platform error: `error_description` starts `AADSTS<code>:`."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {now}"
        ),
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    if suberror:
        body["suberror"] = suberror
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


class AadstsError(Exception):
    """Raised inside the identity handlers; rendered by `aadsts_error`."""

    def __init__(
        self, error: str, code: int, text: str, status: int = 400, suberror: str | None = None
    ) -> None:
        super().__init__(f"AADSTS{code}: {text}")
        self.error = error
        self.code = code
        self.text = text
        self.status = status
        self.suberror = suberror

    def response(self) -> web.Response:
        return aadsts_error(self.status, self.error, self.code, self.text, self.suberror)
