"""Reading requests into the API's models: JSON bodies, query strings and path ids."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from chronapilot.api.errors import ApiError, from_validation
from chronapilot.common.ids import is_valid_id

M = TypeVar("M", bound=BaseModel)
#: Parameters that may repeat (``name[]=a&name[]=b``), under their name without ``[]`` too.
LIST_PARAMS = {"expand[]", "calendar_ids[]"}
MAX_BODY_BYTES = 64 * 1024
#: A header value the API reads as given (``Idempotency-Key``, ``If-Match``): visible ASCII,
#: no space at either end (HTTP strips those).
HEADER_TOKEN = r"^[!-~]([ -~]*[!-~])?$"


def header_token(request: web.Request, name: str, max_length: int) -> str | None:
    """The header ``name`` when given: 1 to ``max_length`` characters of :data:`HEADER_TOKEN`."""
    value = request.headers.get(name)
    if value is None:
        return None
    if len(value) > max_length or not re.match(HEADER_TOKEN, value):
        raise ApiError(
            400,
            "parameter_invalid",
            f"{name} must be 1-{max_length} visible ASCII characters.",
            param=name,
        )
    return value


async def read_json(request: web.Request, model: type[M]) -> M:
    if request.content_type != "application/json":
        raise ApiError(415, "content_type_invalid", "Send a JSON body with Content-Type: application/json.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "body_too_large", f"Request body too large (max {MAX_BODY_BYTES} bytes)."
        ) from None
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "json_invalid", f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "json_invalid", "The body must be a JSON object.")
    if not _encodable(body):
        raise ApiError(400, "json_invalid", "The body contains invalid Unicode (a lone surrogate).")
    try:
        # strict, as JSON Schema reads the body: `0` is not a date, nor `1` true (JSON strings
        # still make dates and instants)
        return model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as exc:
        raise from_validation(exc) from None


def _encodable(value: Any) -> bool:
    """True when every string in ``value`` is valid Unicode (JSON allows lone surrogates)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    return True


def read_query(request: web.Request, model: type[M]) -> M:
    values: dict[str, Any] = {}
    for key in request.query:
        items = request.query.getall(key)
        if (name := key if key.endswith("[]") else f"{key}[]") in LIST_PARAMS:
            values[name] = [*values.get(name, []), *items]
        elif len(items) > 1:
            raise ApiError(400, "parameter_invalid", f"Parameter {key} given more than once.", param=key)
        else:
            values[key] = items[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise from_validation(exc, location="query") from None


def path_id(request: web.Request, prefix: str, what: str) -> str:
    value = request.match_info["id"]
    if not is_valid_id(value, prefix):
        raise ApiError(
            400,
            "parameter_invalid",
            f"Invalid {what} id {value[:40]!r}: expected `{prefix}_` and 26 characters.",
            param="id",
        )
    return value
