"""Change and lifecycle notifications, sent through the shared dispatcher (faults applied).

Each change of an event produces one item per live subscription that covers its calendar and
change type; each item goes in its own POST (`{"value": [item]}`) on the subscription's stream,
so a subscription's notifications arrive in order unless a `reorder` fault says otherwise. With
`notification_batch_seconds` set, items for the same URL within that time share one POST, as
Graph may send them (several items, several subscriptions).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from chronapilot.sandbox.shared.delivery import Delivery

from .state import MicrosoftState, Subscription
from .store import Change
from .times import format_offset

LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def _expiration(state: MicrosoftState, sub: Subscription) -> str:
    return format_offset(datetime.fromtimestamp(sub.expiration, UTC))


def live_subscriptions(state: MicrosoftState) -> list[Subscription]:
    """Subscriptions not yet expired; expired ones are forgotten on the way."""
    now = state.clock.now()
    for sub_id in [s.id for s in state.subscriptions.values() if s.expiration <= now]:
        del state.subscriptions[sub_id]
        state.changed()
    return list(state.subscriptions.values())


def change_item(state: MicrosoftState, sub: Subscription, change: Change) -> dict[str, Any]:
    resource = f"Users/{change.user_id}/Events/{change.item_id}"
    return {
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": _expiration(state, sub),
        "changeType": change.change_type,
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": change.etag,
            "id": change.item_id,
        },
        "clientState": sub.client_state,
        "tenantId": state.tenant_id,
    }


def lifecycle_item(state: MicrosoftState, sub: Subscription, event: str) -> dict[str, Any]:
    return {
        "lifecycleEvent": event,
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": _expiration(state, sub),
        "clientState": sub.client_state,
        "tenantId": state.tenant_id,
    }


def _send(state: MicrosoftState, url: str, sub: Subscription, item: dict[str, Any]) -> None:
    delay = state.settings.notification_batch_seconds
    if delay <= 0:
        _post(state, url, sub.id, [item])
        return
    # Batching: items for one URL within `delay` share one POST (its fault stream is the URL).
    pending = state.batches.setdefault(url, [])
    pending.append(item)
    if len(pending) == 1:
        asyncio.get_running_loop().call_later(delay, _flush, state, url)


def flush_batches(state: MicrosoftState) -> None:
    """Send every batch now (the admin drain does this first)."""
    for url in list(state.batches):
        _flush(state, url)


def _flush(state: MicrosoftState, url: str) -> None:
    items = state.batches.pop(url, [])
    if items:
        _post(state, url, url, items)


def _post(state: MicrosoftState, url: str, stream: str, items: list[dict[str, Any]]) -> None:
    body = json.dumps({"value": items}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    state.dispatcher.dispatch(Delivery(url=url, stream=stream, headers=headers, body=body))


def notify_change(state: MicrosoftState, change: Change) -> None:
    """Store listener: queue a notification for every subscription the change concerns."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # seeding before the server runs: nobody can be subscribed yet
    for sub in live_subscriptions(state):
        if sub.user_id != change.user_id or change.change_type not in sub.change_types:
            continue
        if sub.calendar_id is not None and sub.calendar_id != change.calendar_id:
            continue
        _send(state, sub.notification_url, sub, change_item(state, sub, change))


def check_subscriptions(state: MicrosoftState) -> None:
    """Forget expired subscriptions; send `reauthorizationRequired` once the access token that
    authorized a subscription has expired (until it is renewed or reauthorized)."""
    now = state.clock.now()
    for sub in live_subscriptions(state):
        if not sub.reauthorization_sent and sub.authorized_until and now >= sub.authorized_until:
            sub.reauthorization_sent = True
            send_lifecycle(state, sub, "reauthorizationRequired")
            state.changed()


async def watch_subscriptions(state: MicrosoftState, interval: float = 0.5) -> None:
    """Run `check_subscriptions` every `interval` seconds (cancelled on shutdown)."""
    while True:
        await asyncio.sleep(interval)
        check_subscriptions(state)


def send_lifecycle(state: MicrosoftState, sub: Subscription, event: str) -> bool:
    """Queue a lifecycle notification (False: no lifecycle URL); `subscriptionRemoved` also
    deletes the subscription."""
    sent = bool(sub.lifecycle_notification_url)
    if sub.lifecycle_notification_url:
        _send(state, sub.lifecycle_notification_url, sub, lifecycle_item(state, sub, event))
    if event == "subscriptionRemoved":
        state.subscriptions.pop(sub.id, None)
        state.changed()
    return sent
