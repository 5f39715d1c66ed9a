"""The OpenAPI 3.1 document, built from the route table and the pydantic models the
handlers use, with the customer webhooks ChronaPilot sends (the top-level ``webhooks``
section); served at ``/v1/openapi.json`` and rendered at ``/docs`` (reference.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chronapilot.api.error_codes import ERROR_CODES
from chronapilot.api.schemas import ZONE_SCHEMA, ErrorObject
from chronapilot.common.ids import id_pattern

ERROR_TEXT = {
    400: "Invalid request: see `error.code` and `error.param`. A request line over 8,190 bytes "
    "(or headers over the HTTP server's limits) is refused before the API reads it, with a "
    "`text/plain` body.",
    401: "Missing or invalid API key.",
    403: "Not permitted: the connection's scopes or the calendar do not allow it.",
    404: "No such object (or it belongs to another application).",
    409: "Conflict with the object's state.",
    412: "`If-Match` does not match: the event changed at the provider since.",
    413: "Body too large.",
    415: "Content type is not JSON.",
    429: "Rate limited; retry after `Retry-After` seconds.",
    500: "Something went wrong on ChronaPilot's side; quote `X-Request-Id` when reporting it.",
    503: "The provider or a dependency is unavailable; nothing was written. Retry after "
    "`Retry-After` seconds.",
}
#: Statuses any operation can answer: a malformed request, a bad key, a failure of ours, a
#: dependency down (the database, for every operation).
ALWAYS = (400, 401, 500, 503)

HEADERS: dict[str, Any] = {
    "X-Request-Id": {
        "description": "The request's id in ChronaPilot's logs (yours when you send a sane "
        "`X-Request-Id`: 8 to 64 letters, digits, `.`, `_` or `-`).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier request with the same "
        "`Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}},
    "Allow": {"description": "The methods of the path.", "schema": {"type": "string"}},
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Any
    operation_id: str
    summary: str
    tag: str
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_id: str | None = None  # prefix of the {id} path parameter
    errors: tuple[int, ...] = ()  # beyond ALWAYS, 404 with a path id, 413/415 with a body
    description: str = ""
    conditional: bool = False  # takes `If-Match`


@dataclass(frozen=True)
class Webhook:
    """One type of customer webhook: ChronaPilot POSTs ``payload`` to the endpoint."""

    event_type: str
    summary: str
    payload: type[BaseModel]


#: The Standard Webhooks headers every delivery carries (standardwebhooks.com).
WEBHOOK_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The delivery's id (`msg_…`), the same on every retry: deduplicate on it.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "When this attempt was signed, in seconds since the epoch; refuse one "
        "too far from your clock (replays).",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "Space-separated `v1,<base64>` signatures: HMAC-SHA256 with the "
        "endpoint's secret (the base64 after `whsec_`) of `{webhook-id}.{webhook-timestamp}.{body}`. "
        "After a rotation both the new and the old secret sign for a while; accept the request "
        "if any signature matches.",
        "schema": {"type": "string"},
    },
]
WEBHOOK_RESPONSES = {
    "2XX": {"description": "Received. Answer quickly; do the work afterwards."},
    "410": {"description": "Gone: the endpoint is disabled (`disabled_reason: endpoint_gone`)."},
    "default": {
        "description": "Anything else (or no answer within the timeout) is retried with backoff "
        "for more than a day, in order per connection."
    },
}


def _webhook(hook: Webhook) -> dict[str, Any]:
    return {
        "post": {
            "operationId": "webhook_" + hook.event_type.replace(".", "_"),
            "summary": hook.summary,
            "tags": ["Webhooks"],
            "security": [],
            "parameters": WEBHOOK_HEADERS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{hook.payload.__name__}"}}
                },
            },
            "responses": WEBHOOK_RESPONSES,
        }
    }


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
        }
        if "description" in prop:
            param["description"] = prop["description"]
        if name.endswith("[]"):
            param.update(style="form", explode=True)
        params.append(param)
    return params


#: A header value the API reads as given: visible ASCII, no space at either end (HTTP
#: strips those, and an empty value is refused).
HEADER_TOKEN = r"^[!-~]([ -~]*[!-~])?$"
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry-safe POST: a retry with the same key and the same request gets the first "
    "answer (with `Idempotent-Replayed: true`) for 24 h; the same key with another request is "
    "400 `idempotency_key_reused`, a retry while the first still runs 409 "
    "`idempotency_request_in_progress`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": HEADER_TOKEN},
}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The event's `etag`: write only if the event is still as read (412 otherwise).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": HEADER_TOKEN},
}


def _id_schema(prefix: str) -> dict[str, Any]:
    return {"type": "string", "pattern": id_pattern(prefix), "minLength": 27 + len(prefix)}


def _codes(status: int) -> str:
    codes = [f"`{code}`" for code, doc in ERROR_CODES.items() if status in doc.statuses]
    return f" Codes: {', '.join(codes)}." if codes else ""


def _headers(*names: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    headers: dict[str, Any] = {name: {"$ref": f"#/components/headers/{name}"} for name in names}
    headers |= {name: {**HEADERS[name], "required": True} for name in required}
    return headers


def _responses(op: Operation) -> dict[str, Any]:
    """Every status ``op`` can answer, with the headers each carries."""
    replayable = op.method == "POST"  # the idempotency middleware may replay a stored answer
    replayed = ("Idempotent-Replayed",) if replayable else ()
    success: dict[str, Any] = {
        "description": op.response.__doc__ or "OK",
        "headers": _headers("X-Request-Id", *replayed),
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.response.__name__}"}}},
    }
    responses: dict[str, Any] = {str(op.status): success}
    statuses = set(ALWAYS) | set(op.errors)
    statuses |= {404} if op.path_id else set()
    statuses |= {413, 415} if op.body else set()
    statuses |= {409} if replayable else set()
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorObject"}}}
    for status in sorted(statuses):
        if status == 401:
            headers = _headers("X-Request-Id", required=("WWW-Authenticate",))
        elif status >= 500:  # never stored for a replay
            retry = ("Retry-After",) if status == 503 else ()
            headers = _headers("X-Request-Id", required=retry)
        elif status == 429:
            headers = _headers("X-Request-Id", *replayed, required=("Retry-After",))
        elif status == 409 and replayable:  # `idempotency_request_in_progress` says when
            headers = _headers("X-Request-Id", *replayed, "Retry-After")
        elif status == 400:  # the HTTP server's plain-text refusal has no request id
            headers = {"X-Request-Id": {**HEADERS["X-Request-Id"], "required": False}}
            headers |= _headers(*replayed)
        else:
            headers = _headers("X-Request-Id", *replayed)
        content = {**error, "text/plain": {"schema": {"type": "string"}}} if status == 400 else error
        responses[str(status)] = {
            "description": ERROR_TEXT[status] + _codes(status),
            "headers": headers,
            "content": content,
        }
    return responses


def _hoisted(node: Any, schema: dict[str, Any]) -> Any:
    """``node`` with every copy of ``schema`` (inlined by pydantic) as a reference to it, once."""
    if node == schema and node is not schema:
        return {"$ref": f"#/components/schemas/{schema['title']}"}
    if isinstance(node, dict):
        return {key: value if value is schema else _hoisted(value, schema) for key, value in node.items()}
    if isinstance(node, list):
        return [_hoisted(value, schema) for value in node]
    return node


def build(
    operations: list[Operation], *, server_url: str, webhooks: Sequence[Webhook] = ()
) -> dict[str, Any]:
    pairs: set[tuple[type[BaseModel], str]] = {(ErrorObject, "serialization")}
    pairs |= {(hook.payload, "serialization") for hook in webhooks}
    pairs |= {(op.response, "serialization") for op in operations}
    pairs |= {(op.body, "validation") for op in operations if op.body is not None}
    _, defs = models_json_schema(
        sorted(pairs, key=lambda pair: pair[0].__name__),  # type: ignore[arg-type]
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    paths: dict[str, Any] = {}
    for op in operations:
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": _responses(op),
        }
        if op.description:
            operation["description"] = op.description
        parameters = []
        if op.path_id:
            parameters.append(
                {"name": "id", "in": "path", "required": True, "schema": _id_schema(op.path_id)}
            )
        if op.query:
            parameters += _query_parameters(op.query, schemas)
        if op.method == "POST":
            parameters.append(IDEMPOTENCY_KEY)
        if op.conditional:
            parameters.append(IF_MATCH)
        if parameters:
            operation["parameters"] = parameters
        if op.body:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}
                },
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    schemas[ZONE_SCHEMA["title"]] = ZONE_SCHEMA
    paths = _hoisted(paths, ZONE_SCHEMA)
    schemas = {name: _hoisted(schema, ZONE_SCHEMA) for name, schema in schemas.items()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ChronaPilot API",
            "version": "1.0.0",
            "description": "One API for Google, Microsoft and iCloud calendars: link a "
            "user's account, keep it mirrored, let go of it cleanly.",
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "webhooks": {hook.event_type: _webhook(hook) for hook in webhooks},
        "components": {
            "schemas": schemas,
            "headers": HEADERS,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <API key>`",
                }
            },
        },
    }


OPENAPI = web.AppKey("openapi", dict)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
