"""The API's error envelope, in one place: every failure becomes
``{"error": {"type", "code", "message", "param"?}}`` with the right status. Never a stack
trace, never a 500 page from aiohttp, never a secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from chronapilot.api.error_codes import ErrorCode, known
from chronapilot.common.errors import (
    ChronaPilotError,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    RateLimited,
    StoreError,
)
from chronapilot.common.logging import get_logger

log = get_logger(__name__)


class ApiError(Exception):
    """An error answer: status, type, code, message and the offending parameter."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        param: str | None = None,
        type_: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.type, self.headers = type_, headers or {}

    def response(self) -> web.Response:
        error: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        return web.json_response({"error": error}, status=self.status, headers=self.headers)


def not_found(what: str, param: str = "id") -> ApiError:
    return ApiError(404, "resource_missing", f"No such {what}.", param=param)


def from_validation(exc: ValidationError, *, location: str = "body") -> ApiError:
    """The first problem of a pydantic validation, as an envelope naming the parameter."""
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"] if p != "__root__") or None
    kind = first["type"]
    code: ErrorCode
    if kind == "missing":
        code, message = "parameter_missing", f"Missing required parameter: {param}."
    elif kind == "extra_forbidden":
        code, message = "parameter_unknown", f"Unknown parameter: {param}."
    else:
        code = "parameter_invalid"
        message = f"Invalid {location} parameter {param}: {first['msg'].removeprefix('Value error, ')}."
    return ApiError(400, code, message, param=param)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except ValidationError as exc:
        return from_validation(exc).response()
    except web.HTTPException as exc:
        return _from_http_exception(exc)
    except RateLimited as exc:
        return ApiError(
            429,
            known(exc.code, "rate_limited"),
            exc.message,
            type_="rate_limit_error",
            headers={"Retry-After": str(max(1, round(exc.retry_after)))},
        ).response()
    except NotFound as exc:
        return ApiError(404, known(exc.code, "resource_missing"), exc.message).response()
    except InvalidRequest as exc:
        return ApiError(400, known(exc.code, "invalid_request"), exc.message, param=exc.param).response()
    except Conflict as exc:
        return ApiError(409, known(exc.code, "conflict"), exc.message).response()
    except (StoreError, ProviderError) as exc:
        log.warning("api.dependency_unavailable", error_type=type(exc).__name__, error=str(exc))
        return ApiError(
            503,
            "service_unavailable",
            "A dependency is unavailable; retry shortly.",
            type_="api_error",
            headers={"Retry-After": "2"},
        ).response()
    except ChronaPilotError as exc:
        log.error("api.unhandled_domain_error", error_type=type(exc).__name__, error=str(exc))
        return _internal()
    except Exception:
        log.exception("api.unhandled_error", path=request.path)
        return _internal()


def _internal() -> web.Response:
    return ApiError(500, "internal_error", "Something went wrong on our side.", type_="api_error").response()


def _from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        raise exc  # redirects pass through
    codes: dict[int, tuple[ErrorCode, str]] = {
        404: ("route_not_found", "No such route."),
        405: ("method_not_allowed", "Method not allowed on this route."),
        413: ("body_too_large", "Request body too large."),
        415: ("content_type_invalid", "Send a JSON body with Content-Type: application/json."),
    }
    code, message = codes.get(exc.status, ("invalid_request", exc.reason))
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return ApiError(exc.status, code, message, headers=headers).response()
