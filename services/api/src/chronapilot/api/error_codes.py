"""Every ``error.code`` the API can send, with its status, meaning and what a client should do.

:data:`ErrorCode` is the type of the code every :class:`~chronapilot.api.errors.ApiError` takes
(mypy refuses a code missing here), the enum of ``error.code`` in the OpenAPI document, and the
source of ``docs/errors.md`` (``python -m chronapilot.api.error_codes docs/errors.md``,
``make docs``; a test fails when the committed table differs). Domain errors of
:mod:`chronapilot.common.errors` carry their own codes; the envelope maps them through
:func:`known` and a unit test proves each one they can carry is listed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast, get_args

ErrorCode = Literal[
    "api_key_invalid",
    "api_key_missing",
    "body_too_large",
    "calendar_read_only",
    "conflict",
    "connection_disconnected",
    "connection_not_active",
    "connection_reauth_required",
    "content_type_invalid",
    "idempotency_key_reused",
    "idempotency_request_in_progress",
    "internal_error",
    "invalid_request",
    "json_invalid",
    "method_not_allowed",
    "mirror_unavailable",
    "parameter_invalid",
    "parameter_missing",
    "parameter_unknown",
    "precondition_failed",
    "provider_rejected",
    "provider_unavailable",
    "rate_limited",
    "resource_missing",
    "route_not_found",
    "scope_insufficient",
    "service_unavailable",
    "url_not_public",
    "url_unresolvable",
    "version_conflict",
    "webhook_delivery_cancelled",
    "webhook_endpoint_disabled",
    "webhook_endpoint_limit",
    "window_too_dense",
]


@dataclass(frozen=True)
class CodeDoc:
    statuses: tuple[int, ...]
    meaning: str
    action: str


FIX = "Fix the request (`error.param` names the field); retrying it unchanged fails again."

ERROR_CODES: Final[dict[ErrorCode, CodeDoc]] = {
    "api_key_invalid": CodeDoc(
        (401,),
        "The `Authorization` header is not `Bearer <key>`, or the key is unknown or revoked.",
        "Use a live key of the application (the operator CLI makes and rotates them).",
    ),
    "api_key_missing": CodeDoc((401,), "No `Authorization` header.", "Send `Authorization: Bearer <key>`."),
    "body_too_large": CodeDoc((413,), "The body is over 64 KiB.", "Send a smaller body."),
    "calendar_read_only": CodeDoc(
        (403,), "The account may only read this calendar.", "Write to a calendar the account owns."
    ),
    "conflict": CodeDoc(
        (409,),
        "The object changed in a way that conflicts with the request.",
        "Read the object again, then decide whether to repeat the request.",
    ),
    "connection_disconnected": CodeDoc(
        (409,), "The connection is disconnected.", "Start a new connection for the user."
    ),
    "connection_not_active": CodeDoc(
        (409,),
        "The connection is not `active` (pending, or in `error`): writes need an active one.",
        "Wait for it to become active, or look at its `error`.",
    ),
    "connection_reauth_required": CodeDoc(
        (409,),
        "The provider refused the connection's credentials.",
        "Send the user through a new connection (`POST /v1/connections/start`).",
    ),
    "content_type_invalid": CodeDoc(
        (415,), "The body is not sent as `application/json`.", "Send `Content-Type: application/json`."
    ),
    "idempotency_key_reused": CodeDoc(
        (400,),
        "This `Idempotency-Key` was used with a different request.",
        "Use a new key for a new request.",
    ),
    "idempotency_request_in_progress": CodeDoc(
        (409,),
        "The first request with this `Idempotency-Key` is still running.",
        "Retry after `Retry-After` seconds: you then get its answer.",
    ),
    "internal_error": CodeDoc(
        (500,),
        "Something went wrong on ChronaPilot's side.",
        "Retry with backoff; report it with the response's `X-Request-Id` if it persists.",
    ),
    "invalid_request": CodeDoc((400,), "The request is malformed.", FIX),
    "json_invalid": CodeDoc(
        (400,), "The body is not a JSON object (or holds invalid Unicode).", "Send a JSON object."
    ),
    "method_not_allowed": CodeDoc(
        (405,), "The path exists, not with this method.", "Use a method of the `Allow` header."
    ),
    "mirror_unavailable": CodeDoc(
        (503,),
        "The event was written at the provider, but the mirror could not be read back.",
        "Do not repeat the write: read the event again after `Retry-After` seconds.",
    ),
    "parameter_invalid": CodeDoc((400,), "A parameter (`error.param`) has an invalid value.", FIX),
    "parameter_missing": CodeDoc((400,), "A required parameter (`error.param`) is missing.", FIX),
    "parameter_unknown": CodeDoc(
        (400,), "A parameter (`error.param`) is not one the operation takes (a typo?).", FIX
    ),
    "precondition_failed": CodeDoc(
        (412,),
        "`If-Match` does not match: the event changed at the provider since that etag.",
        "Read the event again and decide on its current state.",
    ),
    "provider_rejected": CodeDoc(
        (400,), "The provider refused the event as invalid.", "Change the event (the message says why)."
    ),
    "provider_unavailable": CodeDoc(
        (400, 409, 503),
        "400/409: the provider is not configured on this ChronaPilot; 503: the provider throttled "
        "or failed and nothing was written.",
        "400/409: use a configured provider; 503: retry after `Retry-After` seconds.",
    ),
    "rate_limited": CodeDoc(
        (429,),
        "Too many requests of this kind (a refresh: one a minute per connection).",
        "Retry after `Retry-After` seconds.",
    ),
    "resource_missing": CodeDoc(
        (404,),
        "No such object (or it is another application's); with `error.param`, the object a "
        "parameter refers to does not exist.",
        "Check the id: list the objects to find it.",
    ),
    "route_not_found": CodeDoc((404,), "No such path.", "Check the URL against the API reference."),
    "scope_insufficient": CodeDoc(
        (403,),
        "The connection was linked with `calendar.read` only.",
        "Start a new connection with `calendar.write`.",
    ),
    "service_unavailable": CodeDoc(
        (503,),
        "A dependency (the database, a provider) is unavailable; nothing was changed.",
        "Retry after `Retry-After` seconds.",
    ),
    "url_not_public": CodeDoc(
        (400,),
        "The webhook URL's host is or resolves to a loopback, private or reserved address.",
        "Use a public URL.",
    ),
    "url_unresolvable": CodeDoc((400,), "The webhook URL's host does not resolve.", "Fix the host name."),
    "version_conflict": CodeDoc(
        (409,), "A concurrent request changed the object first.", "Read it again and retry."
    ),
    "webhook_delivery_cancelled": CodeDoc(
        (409,), "The delivery was cancelled (its endpoint was deleted).", "Nothing to retry."
    ),
    "webhook_endpoint_disabled": CodeDoc(
        (409,), "The webhook endpoint is disabled.", "Enable it (`disabled: false`), then test it."
    ),
    "webhook_endpoint_limit": CodeDoc(
        (400,), "The application holds the most webhook endpoints it may.", "Delete one first."
    ),
    "window_too_dense": CodeDoc(
        (400,),
        "The window holds too many occurrences, or a rule too dense to expand.",
        "Ask for a shorter window.",
    ),
}

CODES: Final[frozenset[str]] = frozenset(get_args(ErrorCode))


def known(code: str, fallback: ErrorCode) -> ErrorCode:
    """``code`` when it is one of :data:`ErrorCode` (a domain error's own code), else ``fallback``."""
    return cast(ErrorCode, code) if code in CODES else fallback


def reference_table() -> str:
    """docs/errors.md: every code, its statuses, meaning and what to do."""
    lines = [
        "# API error codes",
        "",
        "<!-- generated by `make docs` from services/api/src/chronapilot/api/error_codes.py -->",
        "",
        'Every error answer is `{"error": {"type", "code", "message", "param"?}}` with an',
        "`X-Request-Id` header (quote it when reporting a problem). `code` is one of these",
        "(the OpenAPI document lists them as the enum of `error.code`); `message` is for people",
        "and may change, `code` does not. 429 and 503 answers carry `Retry-After` (seconds).",
        "",
        "| code | HTTP status | meaning | what to do |",
        "|---|---|---|---|",
    ]
    for code, doc in ERROR_CODES.items():
        statuses = ", ".join(str(status) for status in doc.statuses)
        lines.append(f"| `{code}` | {statuses} | {doc.meaning} | {doc.action} |")
    lines += [
        "",
        "One answer has no JSON body: a request line over 8,190 bytes (or headers over the HTTP",
        "server's limits) is refused with `400` and a `text/plain` body before the API reads it.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    Path(argv[1]).write_text(reference_table(), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
