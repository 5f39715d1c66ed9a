"""Deliveries of customer webhooks, as an application sees them: an endpoint's deliveries
(``GET /v1/webhook_endpoints/{id}/deliveries``), a test ``ping`` to an endpoint, and a retry
(``POST /v1/webhook_deliveries/{id}/retry``). The dispatcher sends what these queue."""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from chronapilot.api.auth import current_application
from chronapilot.api.errors import ApiError, not_found
from chronapilot.api.pagination import page
from chronapilot.api.requests import path_id, read_query
from chronapilot.api.schemas import dump
from chronapilot.api.webhook_endpoints import owned_endpoint
from chronapilot.api.webhook_schemas import ListWebhookDeliveriesQuery, WebhookDeliveryObject
from chronapilot.common.clock import isoformat_z
from chronapilot.common.ids import new_id
from chronapilot.common.runtime import RUNTIME
from chronapilot.common.store import Document
from chronapilot.common.store.webhook_deliveries import CANCELLED, PENDING, message_id, new_delivery
from chronapilot.common.webhooks import PING


def render_delivery(raw: Document) -> dict[str, Any]:
    pending = raw["status"] == PENDING
    return dump(
        WebhookDeliveryObject(
            id=raw["_id"],
            endpoint_id=raw["endpoint_id"],
            event_type=raw["event_type"],
            webhook_id=message_id(raw["_id"]),
            status=raw["status"],
            attempts=raw.get("attempts", 0),
            last_attempt_at=raw.get("last_attempt_at"),
            last_response_status=raw.get("last_response_status"),
            last_error=raw.get("last_error"),
            # while pending it is the schedule (or a dispatcher's lease); otherwise nothing is due
            next_attempt_at=raw.get("next_attempt_at") if pending else None,
            created_at=raw["created_at"],
            payload=raw["payload"],
        )
    )


async def list_webhook_deliveries(request: web.Request) -> web.Response:
    query = read_query(request, ListWebhookDeliveriesQuery)
    endpoint = await owned_endpoint(request)
    flt: dict[str, Any] = {"application_id": endpoint["application_id"], "endpoint_id": endpoint["_id"]}
    if query.status is not None:
        flt["status"] = query.status
    deliveries = request.app[RUNTIME].repos.webhook_deliveries
    url = f"/v1/webhook_endpoints/{endpoint['_id']}/deliveries"
    body = await page(partial(deliveries.page, flt), query, url=url, render=render_delivery)
    return web.json_response(body)


async def ping_webhook_endpoint(request: web.Request) -> web.Response:
    """Queue a ``ping`` delivery to the endpoint, due now."""
    endpoint = await owned_endpoint(request)
    if endpoint["disabled"]:
        raise ApiError(
            409, "webhook_endpoint_disabled", "This webhook endpoint is disabled; enable it to test it."
        )
    runtime = request.app[RUNTIME]
    now = runtime.clock.now()
    stamp = isoformat_z(now)
    payload = {
        "type": PING,
        "timestamp": stamp,
        "data": {
            "object": {"object": PING, "endpoint_id": endpoint["_id"]},
            "updated_at": stamp,
            "sequence": 0,
        },
    }
    delivery = new_delivery(
        application_id=endpoint["application_id"],
        endpoint_id=endpoint["_id"],
        event_type=PING,
        connection_id=None,
        payload=payload,
        source_id=f"{PING}/{new_id(PING)}",
        now=now,
        next_attempt_at=now,
    )
    await runtime.repos.webhook_deliveries.create_many([delivery])
    return web.json_response(render_delivery(delivery), status=202)


async def retry_webhook_delivery(request: web.Request) -> web.Response:
    """Send it again now, whatever it came to; not once cancelled (its endpoint is gone)."""
    delivery_id = path_id(request, "wd", "webhook delivery")
    runtime = request.app[RUNTIME]
    deliveries = runtime.repos.webhook_deliveries
    application_id = current_application(request).id
    raw = await deliveries.of_application(application_id, delivery_id)
    if raw is None:
        raise not_found("webhook delivery")
    retried = None
    if raw["status"] != CANCELLED:
        retried = await deliveries.retry(application_id, delivery_id, now=runtime.clock.now())
    if retried is None:
        raise ApiError(
            409,
            "webhook_delivery_cancelled",
            "This delivery was cancelled (its webhook endpoint was deleted); it cannot be retried.",
        )
    return web.json_response(render_delivery(retried), status=202)
