"""The OpenAPI 3.1 document, built from the route table and the pydantic models the
handlers use, with the customer webhooks ChronaPilot sends (the top-level ``webhooks``
section); served at ``/v1/openapi.json`` and rendered at ``/docs`` (reference.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chronapilot.api.schemas import ErrorObject

ERROR_TEXT = {
    400: "Invalid request: see `error.code` and `error.param`.",
    401: "Missing or invalid API key.",
    403: "Not permitted: the connection's scopes or the calendar do not allow it.",
    404: "No such object (or it belongs to another application).",
    409: "Conflict with the object's state.",
    412: "`If-Match` does not match: the event changed at the provider since.",
    413: "Body too large.",
    415: "Content type is not JSON.",
    429: "Rate limited; retry after `Retry-After` seconds.",
    503: "The provider or a dependency is unavailable; nothing was written. Retry after "
    "`Retry-After` seconds.",
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
    errors: tuple[int, ...] = field(default=(400, 401))
    description: str = ""


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
        responses: dict[str, Any] = {
            str(op.status): {
                "description": op.response.__doc__ or "OK",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{op.response.__name__}"}}
                },
            },
        }
        errors = set(op.errors) | ({404} if op.path_id else set()) | ({413, 415} if op.body else set())
        for status in sorted(errors):
            responses[str(status)] = {
                "description": ERROR_TEXT[status],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorObject"}}},
            }
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        if op.description:
            operation["description"] = op.description
        parameters = []
        if op.path_id:
            parameters.append(
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": f"^{op.path_id}_[0-9a-z]{{26}}$"},
                }
            )
        if op.query:
            parameters += _query_parameters(op.query, schemas)
        if parameters:
            operation["parameters"] = parameters
        if op.body:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}
                },
            }
        if op.method == "POST":
            operation.setdefault("parameters", []).append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Retry-safe POST: the same key returns the first answer for 24 h.",
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
        paths.setdefault(op.path, {})[op.method.lower()] = operation
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
