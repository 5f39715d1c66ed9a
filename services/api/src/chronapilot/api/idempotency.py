"""``Idempotency-Key`` on POST: a retried request gets the first answer, not a second effect.

The first request with a key reserves it; its answer (status and body) is stored when it
completes and replayed to any retry with the same key and the same request for 24 hours. The
same key with a different request is an error, and so is a retry while the first is still
running. Keys are per application.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from aiohttp import web

from chronapilot.api.auth import APPLICATION
from chronapilot.api.errors import ApiError, Handler
from chronapilot.common.runtime import RUNTIME

TTL = timedelta(hours=24)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None or APPLICATION not in request:
        return await handler(request)
    if not 1 <= len(key) <= 255:
        raise ApiError(
            400, "parameter_invalid", "Idempotency-Key must be 1-255 characters.", param="Idempotency-Key"
        )
    runtime = request.app[RUNTIME]
    keys = runtime.repos.idempotency_keys
    body = await request.read()
    fingerprint = hashlib.sha256(request.method.encode() + request.path_qs.encode() + b"\0" + body)
    record_id = f"{request[APPLICATION].id}:{key}"
    now = runtime.clock.now()
    if not await keys.claim(record_id, fingerprint=fingerprint.hexdigest(), now=now, expires_at=now + TTL):
        previous = await keys.get(record_id)
        if previous is None or previous["expires_at"].replace(tzinfo=now.tzinfo) < now:
            await keys.release(record_id)
            return await idempotency(request, handler)
        if previous["fingerprint"] != fingerprint.hexdigest():
            raise ApiError(
                400,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
                type_="idempotency_error",
                param="Idempotency-Key",
            ) from None
        if previous["status"] is None:
            raise ApiError(
                409,
                "idempotency_request_in_progress",
                "A request with this Idempotency-Key is still in progress.",
                type_="idempotency_error",
            ) from None
        return web.Response(
            status=previous["status"],
            body=previous["body"],
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except BaseException:
        await keys.release(record_id)  # nothing stored: a retry runs it again
        raise
    payload = response.body if isinstance(response, web.Response) else None
    if isinstance(payload, bytes | bytearray) and response.status < 500:
        await keys.complete(record_id, status=response.status, body=bytes(payload))
    else:
        await keys.release(record_id)
    return response
