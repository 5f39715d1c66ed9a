"""``Idempotency-Key`` on POST: a retried request gets the first answer, not a second effect.

The first request with a key reserves it; its answer (status and body) is stored when it
completes and replayed to any retry with the same key and the same request for 24 hours. The
same key with a different request is an error, and so is a retry while the first is still
running. Keys are per application.

A request holds its key for ``idempotency_lock_s`` (``locked_until``): a process that dies
mid-request cannot release it, so once the lock has run out a retry of the same request takes
the key over and runs (the dead request stored nothing). Only the request holding the key
(``owner``) stores its answer or releases it. The server prunes keys when they expire (a TTL
index on ``expires_at``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import secrets
from datetime import datetime, timedelta

from aiohttp import web

from chronapilot.api.auth import APPLICATION
from chronapilot.api.errors import ApiError, Handler
from chronapilot.api.requests import header_token
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.errors import StoreError
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.store import Document
from chronapilot.common.store.idempotency_keys import locked_until

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def fingerprint(method: str, path_qs: str, body: bytes) -> str:
    """What makes two requests "the same request" for one key."""
    return hashlib.sha256(method.encode() + path_qs.encode() + b"\0" + body).hexdigest()


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method != "POST" or APPLICATION not in request:
        return await handler(request)
    key = header_token(request, "Idempotency-Key", MAX_KEY_LENGTH)
    if key is None:
        return await handler(request)
    runtime = request.app[RUNTIME]
    keys = runtime.repos.idempotency_keys
    request_print = fingerprint(request.method, request.path_qs, await request.read())
    record_id = f"{request[APPLICATION].id}:{key}"
    now = runtime.clock.now()
    lock = timedelta(seconds=runtime.settings.service.idempotency_lock_s)
    owner = secrets.token_hex(12)
    held = await keys.reserve(record_id, fingerprint=request_print, owner=owner, now=now, lock=lock, ttl=TTL)
    if held is not None:
        return _answer_retry(held, request_print, now, lock, runtime.cipher)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except BaseException:
        await _release(request, record_id, owner)  # nothing stored: a retry runs it again
        raise
    payload = response.body if isinstance(response, web.Response) else None
    if isinstance(payload, bytes | bytearray) and response.status < 500:
        # sealed: an answer can hold a secret shown once (a webhook endpoint's signing secret)
        sealed = runtime.cipher.encrypt(bytes(payload).decode("utf-8", "replace"), associated_data=record_id)
        await keys.complete(record_id, owner=owner, status=response.status, body=sealed)
    else:
        await _release(request, record_id, owner)
    return response


def _answer_retry(
    held: Document, request_print: str, now: datetime, lock: timedelta, cipher: TokenCipher
) -> web.Response:
    if held["fingerprint"] != request_print:
        raise ApiError(
            400,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request.",
            type_="idempotency_error",
            param="Idempotency-Key",
        )
    if held["status"] is None:
        wait = max(1, math.ceil((locked_until(held, lock) - now).total_seconds()))
        raise ApiError(
            409,
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still in progress.",
            type_="idempotency_error",
            headers={"Retry-After": str(wait)},
        )
    stored = held["body"]
    body = cipher.decrypt(stored, associated_data=held["_id"]).encode() if isinstance(stored, str) else stored
    return web.Response(
        status=held["status"],
        body=body,
        content_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


async def _release(request: web.Request, record_id: str, owner: str) -> None:
    """Give the key up; a store failure here leaves the lock to run out."""
    with contextlib.suppress(StoreError):
        await request.app[RUNTIME].repos.idempotency_keys.release(record_id, owner=owner)
