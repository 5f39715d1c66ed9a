"""``/v1/webhook_endpoints``: where an application's customer webhooks go (ARCHITECTURE §9).

An endpoint is created with a signing secret shown once (and again only from
``rotate_secret``); the secret is stored sealed. How many endpoints an application holds is
counted on the application in the creating transaction, so the cap holds under concurrent
creates. URLs are checked by :mod:`chronapilot.common.webhooks.addresses`, the same check the
dispatcher runs before each send.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.error_codes import ErrorCode
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page
from chronapilot.api.requests import path_id, read_json, read_query
from chronapilot.api.schemas import ListQuery, dump
from chronapilot.api.webhook_schemas import (
    CreateWebhookEndpointBody,
    UpdateWebhookEndpointBody,
    WebhookEndpointObject,
    WebhookEndpointWithSecretObject,
)
from chronapilot.common.ids import new_id
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.store import Document, Session
from chronapilot.common.store.webhook_deliveries import CANCELLED
from chronapilot.common.webhooks.addresses import UnsafeDestination, check_destination
from chronapilot.common.webhooks.signing import new_secret, seal


def render_endpoint(raw: Document, *, secret: str | None = None) -> dict[str, Any]:
    fields = {
        "id": raw["_id"],
        "url": raw["url"],
        "enabled_events": raw["enabled_events"],
        "description": raw.get("description"),
        "disabled": raw["disabled"],
        "disabled_reason": raw.get("disabled_reason"),
        "created_at": raw["created_at"],
        "updated_at": raw["updated_at"],
    }
    if secret is None:
        return dump(WebhookEndpointObject(**fields))
    return dump(WebhookEndpointWithSecretObject(**fields, secret=secret))


async def checked_url(runtime: Runtime, url: str) -> str:
    """``url`` once it may receive webhooks (http and local addresses only in development)."""
    try:
        await check_destination(url, allow_private=runtime.settings.webhook_private_destinations_allowed)
    except UnsafeDestination as exc:
        code: dict[str, ErrorCode] = {"private_address": "url_not_public", "unresolvable": "url_unresolvable"}
        raise ApiError(
            400, code.get(exc.reason, "parameter_invalid"), f"url {exc.message}.", param="url"
        ) from None
    return url


async def owned_endpoint(request: web.Request) -> Document:
    endpoint_id = path_id(request, "we", "webhook endpoint")
    raw = await request.app[RUNTIME].repos.webhook_endpoints.of_application(
        current_application(request).id, endpoint_id
    )
    if raw is None:
        raise not_found("webhook endpoint")
    return raw


async def create_webhook_endpoint(request: web.Request) -> web.Response:
    body = await read_json(request, CreateWebhookEndpointBody)
    runtime = request.app[RUNTIME]
    repos = runtime.repos
    application_id = current_application(request).id
    url = await checked_url(runtime, body.url)
    now = runtime.clock.now()
    endpoint_id, secret = new_id("we"), new_secret()
    endpoint = {
        "_id": endpoint_id,
        "application_id": application_id,
        "url": url,
        "description": body.description,
        "enabled_events": body.enabled_events,
        "disabled": body.disabled,
        "disabled_reason": None,
        "secrets": [
            {"secret": seal(runtime.cipher, endpoint_id, secret), "created_at": now, "expires_at": None}
        ],
        "failing_since": None,
        "created_at": now,
        "updated_at": now,
    }
    cap = runtime.settings.webhooks.webhook_max_endpoints

    async def create(session: Session) -> bool:
        if not await repos.applications.reserve_endpoint_slot(application_id, cap, session=session):
            return False
        await repos.webhook_endpoints.insert(endpoint, session=session)
        return True

    if not await runtime.store.in_transaction(create):
        raise ApiError(
            400,
            "webhook_endpoint_limit",
            f"An application may hold at most {cap} webhook endpoints; delete one to add another.",
        )
    return web.json_response(render_endpoint(endpoint, secret=secret), status=201)


async def list_webhook_endpoints(request: web.Request) -> web.Response:
    query = read_query(request, ListQuery)
    endpoints = request.app[RUNTIME].repos.webhook_endpoints
    flt = {"application_id": current_application(request).id}
    body = await page(
        partial(endpoints.page, flt), query, url="/v1/webhook_endpoints", render=render_endpoint
    )
    return web.json_response(body)


async def get_webhook_endpoint(request: web.Request) -> web.Response:
    return web.json_response(render_endpoint(await owned_endpoint(request)))


async def update_webhook_endpoint(request: web.Request) -> web.Response:
    body = await read_json(request, UpdateWebhookEndpointBody)
    raw = await owned_endpoint(request)
    runtime = request.app[RUNTIME]
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    for name, value in fields.items():
        if value is None and name != "description":
            raise ApiError(400, "parameter_invalid", f"{name} cannot be null.", param=name)
    if not fields:
        return web.json_response(render_endpoint(raw))
    if "url" in fields:
        await checked_url(runtime, fields["url"])
    updated = await runtime.repos.webhook_endpoints.update(
        raw["application_id"], raw["_id"], fields, now=runtime.clock.now()
    )
    if updated is None:  # deleted meanwhile
        raise not_found("webhook endpoint")
    return web.json_response(render_endpoint(updated))


async def delete_webhook_endpoint(request: web.Request) -> web.Response:
    """Delete it, give its place under the cap back, and cancel what it still had to receive.
    Answers the endpoint as it was; once deleted it is not found."""
    raw = await owned_endpoint(request)
    runtime = request.app[RUNTIME]
    repos = runtime.repos

    async def delete(session: Session) -> bool:
        deleted = await repos.webhook_endpoints.delete(raw["application_id"], raw["_id"], session=session)
        if deleted:
            await repos.applications.release_endpoint_slot(raw["application_id"], session=session)
        return deleted

    if not await runtime.store.in_transaction(delete):  # a concurrent DELETE won
        raise not_found("webhook endpoint")
    await repos.webhook_deliveries.end_pending(
        raw["_id"], CANCELLED, now=runtime.clock.now(), error="The endpoint was deleted."
    )
    return web.json_response(render_endpoint(raw))


async def rotate_webhook_endpoint_secret(request: web.Request) -> web.Response:
    """A new secret signs from now on; the old one keeps signing (both signatures are sent)
    for ``webhook_secret_overlap_s``, so receivers can switch without losing a delivery."""
    raw = await owned_endpoint(request)
    runtime = request.app[RUNTIME]
    secret = new_secret()
    updated = await runtime.repos.webhook_endpoints.rotate_secret(
        raw["application_id"],
        raw["_id"],
        seal(runtime.cipher, raw["_id"], secret),
        now=runtime.clock.now(),
        overlap=timedelta(seconds=runtime.settings.webhooks.webhook_secret_overlap_s),
    )
    if updated is None:
        raise not_found("webhook endpoint")
    return web.json_response(render_endpoint(updated, secret=secret))
