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
from datetime import UTC, datetime, timedelta

from aiohttp import web
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from chronapilot.api.auth import APPLICATION
from chronapilot.api.errors import ApiError, Handler
from chronapilot.common.errors import StoreError
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.store import Document, translate_errors

COLLECTION = "idempotency_keys"
TTL = timedelta(hours=24)
_ATTEMPTS = 3  # insert, or take over, racing with other requests for the same key


def fingerprint(method: str, path_qs: str, body: bytes) -> str:
    """What makes two requests "the same request" for one key."""
    return hashlib.sha256(method.encode() + path_qs.encode() + b"\0" + body).hexdigest()


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
    keys = runtime.db.db[COLLECTION]
    request_print = fingerprint(request.method, request.path_qs, await request.read())
    record_id = f"{request[APPLICATION].id}:{key}"
    now = runtime.clock.now()
    lock = timedelta(seconds=runtime.settings.service.idempotency_lock_s)
    owner = secrets.token_hex(12)
    with translate_errors():
        held = await _reserve(keys, record_id, request_print, owner, now, lock)
    if held is not None:
        return _answer_retry(held, request_print, now, lock)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except BaseException:
        await _release(keys, record_id, owner)  # nothing stored: a retry runs it again
        raise
    payload = response.body if isinstance(response, web.Response) else None
    if isinstance(payload, bytes | bytearray) and response.status < 500:
        with translate_errors():
            await keys.update_one(
                {"_id": record_id, "owner": owner},
                {"$set": {"status": response.status, "body": bytes(payload), "locked_until": None}},
            )
    else:
        await _release(keys, record_id, owner)
    return response


async def _reserve(
    keys: AsyncCollection[Document],
    record_id: str,
    request_print: str,
    owner: str,
    now: datetime,
    lock: timedelta,
) -> Document | None:
    """Take ``record_id`` for this request (None), or return the record that holds it: a
    finished request's answer, or a request still running. A key past its 24 hours starts
    afresh; the same request's key whose lock ran out is taken over."""
    held: Document | None = None
    for _ in range(_ATTEMPTS):
        try:
            await keys.insert_one(
                {
                    "_id": record_id,
                    "fingerprint": request_print,
                    "status": None,
                    "body": None,
                    "owner": owner,
                    "created_at": now,
                    "locked_until": now + lock,
                    "expires_at": now + TTL,
                }
            )
            return None
        except DuplicateKeyError:
            held = await keys.find_one({"_id": record_id})
        if held is None:
            continue  # pruned meanwhile
        if _aware(held["expires_at"]) <= now:
            await keys.delete_one({"_id": record_id, "expires_at": held["expires_at"]})
            continue
        if held["fingerprint"] != request_print or held["status"] is not None or _locked(held, now, lock):
            return held
        taken = await keys.find_one_and_update(
            {"_id": record_id, "status": None, "owner": held.get("owner")},
            {"$set": {"owner": owner, "locked_until": now + lock, "taken_over_at": now}},
        )
        if taken is not None:
            return None
    if held is None:
        raise StoreError(f"idempotency key record {record_id} kept changing under this request")
    return held


def _locked(held: Document, now: datetime, lock: timedelta) -> bool:
    """The request holding the key may still be running. A record without ``locked_until`` (one
    written before the lock existed) is locked for ``lock`` from its creation."""
    return _until(held, lock) > now


def _until(held: Document, lock: timedelta) -> datetime:
    until = held.get("locked_until")
    return _aware(until) if until is not None else _aware(held["created_at"]) + lock


def _answer_retry(held: Document, request_print: str, now: datetime, lock: timedelta) -> web.Response:
    if held["fingerprint"] != request_print:
        raise ApiError(
            400,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request.",
            type_="idempotency_error",
            param="Idempotency-Key",
        )
    if held["status"] is None:
        wait = max(1, math.ceil((_until(held, lock) - now).total_seconds()))
        raise ApiError(
            409,
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still in progress.",
            type_="idempotency_error",
            headers={"Retry-After": str(wait)},
        )
    return web.Response(
        status=held["status"],
        body=held["body"],
        content_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


async def _release(keys: AsyncCollection[Document], record_id: str, owner: str) -> None:
    """Give the key up (if this request still holds it); a store failure here leaves the lock
    to run out."""
    with contextlib.suppress(StoreError), translate_errors():
        await keys.delete_one({"_id": record_id, "owner": owner})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
