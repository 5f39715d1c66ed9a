"""``/v1/connections``: list, retrieve, disconnect and force a resync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from chronapilot.api.auth import current_application
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import (
    CalendarObject,
    ConnectionErrorObject,
    ConnectionObject,
    ExpandQuery,
    ListConnectionsQuery,
    TokenRefreshObject,
    WebhookSubscriptionObject,
    dump,
)
from chronapilot.common.bus.catalogue import (
    ConnectionDisconnected,
    SyncMode,
    SyncReason,
    SyncRequested,
)
from chronapilot.common.models import Connection, ConnectionStatus
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.store import Document

COLLECTION = "connections"
REFRESH_INTERVAL = timedelta(seconds=60)


def render_calendar(raw: Document) -> CalendarObject:
    return CalendarObject(
        id=raw["_id"],
        connection_id=raw["connection_id"],
        provider_calendar_id=raw["provider_calendar_id"],
        name=raw["name"],
        primary=raw.get("primary", False),
        read_only=raw.get("read_only", False),
        timezone=raw.get("timezone"),
        color=raw.get("color"),
        removed=raw.get("removed", False),
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
    )


def render(raw: Document, calendars: list[Document] | None = None) -> dict[str, Any]:
    """The connection object; ``calendars`` given → expanded inline, else their ids."""
    connection = Connection.from_mongo(raw)
    telemetry = connection.token_refresh
    return dump(
        ConnectionObject(
            id=connection.id,
            provider=connection.provider.value,
            status=connection.status.value,
            email=connection.email,
            sync_mode=connection.sync_mode.value,
            last_synced_at=connection.last_synced_at,
            calendars=(
                [render_calendar(c) for c in calendars]
                if calendars is not None
                else list(connection.calendar_ids)
            ),
            webhook_subscription=(
                WebhookSubscriptionObject(**connection.webhook_subscription.model_dump())
                if connection.webhook_subscription
                else None
            ),
            token_refresh=TokenRefreshObject(**telemetry.model_dump()),
            created_at=connection.created_at,
            user_id=connection.user_id,
            error=ConnectionErrorObject(**connection.error.model_dump()) if connection.error else None,
            disconnected_at=connection.disconnected_at,
            revoked_at=connection.revoked_at,
        )
    )


async def calendars_of(runtime: Runtime, connection: Document) -> list[Document]:
    ids = connection.get("calendar_ids", [])
    found = {c["_id"]: c async for c in runtime.db.db.calendars.find({"_id": {"$in": ids}})}
    return [found[i] for i in ids if i in found]


async def _owned(request: web.Request) -> Document:
    connection_id = path_id(request, "con", "connection")
    raw = (
        await request.app[RUNTIME]
        .db.db[COLLECTION]
        .find_one({"_id": connection_id, "application_id": current_application(request).id})
    )
    if raw is None:
        raise not_found("connection")
    return raw


async def list_connections(request: web.Request) -> web.Response:
    query = read_query(request, ListConnectionsQuery)
    flt: dict[str, Any] = {"application_id": current_application(request).id}
    for field in ("user_id", "provider", "status"):
        if (value := getattr(query, field)) is not None:
            flt[field] = value
    body = await page(
        request.app[RUNTIME].db.db[COLLECTION], flt, query, url="/v1/connections", render=render
    )
    return web.json_response(body)


async def get_connection(request: web.Request) -> web.Response:
    expand = read_query(request, ExpandQuery)
    raw = await _owned(request)
    calendars = await calendars_of(request.app[RUNTIME], raw) if expand.expand else None
    return web.json_response(render(raw, calendars))


async def delete_connection(request: web.Request) -> web.Response:
    """Disconnect at once; the owners of tokens, subscriptions and sync react to the event."""
    raw = await _owned(request)
    runtime = request.app[RUNTIME]
    if raw["status"] == ConnectionStatus.DISCONNECTED:
        return web.json_response(render(raw))  # idempotent: nothing new happens
    now = runtime.clock.now()

    async def disconnect(session: AsyncClientSession) -> Document | None:
        updated = await runtime.db.db[COLLECTION].find_one_and_update(
            {"_id": raw["_id"], "status": {"$ne": ConnectionStatus.DISCONNECTED.value}},
            {
                "$set": {
                    "status": ConnectionStatus.DISCONNECTED.value,
                    "disconnected_at": now,
                    "updated_at": now,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if updated is not None:
            await runtime.emit(
                session,
                ConnectionDisconnected(application_id=raw["application_id"], provider=raw["provider"]),
                connection_id=raw["_id"],
            )
        return updated

    updated = await runtime.db.in_transaction(disconnect)
    if updated is None:  # a concurrent DELETE won; answer with its result
        updated = await runtime.db.db[COLLECTION].find_one({"_id": raw["_id"]})
        assert updated is not None
    return web.json_response(render(updated))


async def refresh_connection(request: web.Request) -> web.Response:
    """Request a full sync, at most once a minute per connection (atomic across processes)."""
    raw = await _owned(request)
    runtime = request.app[RUNTIME]
    if raw["status"] == ConnectionStatus.DISCONNECTED:
        raise ApiError(
            409, "connection_disconnected", "This connection is disconnected; start a new one to sync again."
        )
    now = runtime.clock.now()

    async def claim(session: AsyncClientSession) -> Document | None:
        claimed = await runtime.db.db[COLLECTION].find_one_and_update(
            {
                "_id": raw["_id"],
                "status": {"$ne": ConnectionStatus.DISCONNECTED.value},
                "$or": [{"manual_refresh_at": None}, {"manual_refresh_at": {"$lte": now - REFRESH_INTERVAL}}],
            },
            {"$set": {"manual_refresh_at": now}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if claimed is not None:
            await runtime.emit(
                session, SyncRequested(mode=SyncMode.FULL, reason=SyncReason.MANUAL), connection_id=raw["_id"]
            )
        return claimed

    claimed = await runtime.db.in_transaction(claim)
    if claimed is None:
        current = await runtime.db.db[COLLECTION].find_one({"_id": raw["_id"]})
        if current is None or current["status"] == ConnectionStatus.DISCONNECTED:
            raise ApiError(409, "connection_disconnected", "This connection is disconnected.")
        last = current["manual_refresh_at"]
        wait = max(1, int((last + REFRESH_INTERVAL - now).total_seconds() + 0.999))
        raise ApiError(
            429,
            "rate_limited",
            f"A refresh was requested less than a minute ago; retry in {wait}s.",
            type_="rate_limit_error",
            headers={"Retry-After": str(wait)},
        )
    return web.json_response(render(claimed), status=202)
