"""Microsoft push: Graph subscriptions on one calendar's events, their validation handshake,
change notifications and lifecycle notifications.

Quirks kept here (learn.microsoft.com/graph/change-notifications-delivery-webhooks,
…/api/resources/subscription, …/change-notifications-lifecycle-events):

- creating a subscription makes Graph POST ``?validationToken=…`` to the notification URL and
  to the lifecycle URL first; both must echo the token as ``text/plain`` within 10 s, so the
  gateway must be serving before it subscribes;
- the lifetime for Outlook events is capped (10,080 minutes now, 4,230 in older tenants); a
  longer wish is refused with ``400`` "Subscription expiration can only be N minutes in the
  future.": the call is repeated once with N minutes (a little less, for clock skew);
- ``lifecycleNotificationUrl`` can only be set at creation; renewal is a ``PATCH`` of
  ``expirationDateTime`` and keeps the id and ``clientState``;
- one notification POST may carry several items, for several subscriptions; lifecycle items
  carry ``lifecycleEvent`` instead of ``changeType``; the same item twice is the same
  notification. Graph documents no maximum batch size; a batch of more than
  :data:`MAX_BATCH_ITEMS` items is refused as invalid (the gateway answers 400, nothing of it
  is processed), so an unauthenticated request cannot make the gateway look up thousands of
  made-up subscription ids;
- deleting a subscription Graph no longer knows answers 404: that counts as deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.http import Answer, ProviderHttp
from chronapilot.common.providers.push import (
    Changed,
    Handshake,
    InvalidNotification,
    Lifecycle,
    LifecycleEvent,
    Notification,
    Subscription,
    SwitchTo,
    authorized_call,
)

#: Outlook events: at most 10,080 minutes (asking for more is refused).
MAX_LIFETIME = timedelta(minutes=10080)
#: Items one notification POST may carry. Graph sends the notifications queued for one URL
#: together and documents no maximum; at roughly 500-700 bytes an item, a batch near this cap
#: is already most of the gateway's 1 MiB body limit, far beyond what Graph batches in practice.
MAX_BATCH_ITEMS = 1000
CHANGE_TYPES = "created,updated,deleted"
_LIMIT = re.compile(r"can only be ([0-9.]+) minutes in the future")
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def parse_graph_time(value: object) -> datetime:
    """A Graph timestamp (``2026-01-07T10:00:00.0000000Z``, seven fraction digits allowed)."""
    match = _STAMP.match(str(value))
    if match is None:
        raise ProviderError(f"microsoft: unreadable timestamp {value!r}")
    whole, fraction, zone = match.groups()
    fraction = f".{fraction[:6]:0<6}" if fraction else ""
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(whole + fraction + zone).astimezone(UTC)


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lifetime_limit(answer: Answer) -> timedelta | None:
    """The lifetime Graph says it allows, from its 400 answer to a longer wish."""
    if answer.status != 400:
        return None
    try:
        message = str(json.loads(answer.body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return None
    match = _LIMIT.search(message)
    return timedelta(minutes=float(match.group(1))) if match else None


class MicrosoftPush:
    """Microsoft's :class:`~chronapilot.common.providers.push.PushSubscriptions`: the ``push``
    component of :class:`~chronapilot.common.providers.microsoft.client.MicrosoftProvider`."""

    name = "microsoft"
    renewable = True
    accepted_status = 202
    retries_client_errors = True

    def __init__(self, http: ProviderHttp, graph_url: str) -> None:
        self._http = http
        self._graph_url = graph_url

    async def create_subscription(
        self,
        token: TokenSource,
        calendar_id: str,
        *,
        notification_url: str,
        lifecycle_url: str,
        secret: str,
        ttl: timedelta,
    ) -> Subscription:
        """``POST /subscriptions`` on ``me/calendars/{id}/events`` (after Graph's handshake)."""
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "resource": f"me/calendars/{calendar_id}/events",
            "clientState": secret,
            "latestSupportedTlsVersion": "v1_2",
        }
        answer = await self._with_lifetime("POST", f"{self._graph_url}/subscriptions", token, body, ttl, 201)
        return _subscription(answer.json(), calendar_id)

    async def renew_subscription(
        self,
        token: TokenSource,
        subscription: Subscription,
        *,
        notification_url: str,
        lifecycle_url: str,
        secret: str,
        ttl: timedelta,
        switch_to: SwitchTo,
    ) -> Subscription:
        """``PATCH /subscriptions/{id}`` with a new ``expirationDateTime``; same id and secret."""
        url = f"{self._graph_url}/subscriptions/{subscription.id}"
        answer = await self._with_lifetime("PATCH", url, token, {}, ttl, 200)
        renewed = _subscription(answer.json(), subscription.calendar_id)
        await switch_to(renewed)
        return renewed

    async def delete_subscription(self, token: TokenSource, subscription: Subscription) -> None:
        """``DELETE /subscriptions/{id}``; 404 counts as deleted."""
        url = f"{self._graph_url}/subscriptions/{subscription.id}"
        await authorized_call(self._http, "DELETE", url, token, ok=(200, 204, 404))

    async def _with_lifetime(
        self, method: str, url: str, token: TokenSource, body: dict[str, Any], ttl: timedelta, ok: int
    ) -> Answer:
        """Send with ``expirationDateTime`` = now + ``ttl`` (capped); once more with Graph's own
        limit when it refuses the lifetime."""
        lifetime = min(ttl, MAX_LIFETIME)
        for _ in range(2):
            expires = datetime.now(UTC) + lifetime
            payload = {**body, "expirationDateTime": _graph_time(expires)}
            answer = await authorized_call(self._http, method, url, token, body=payload, ok=(ok, 400))
            limit = _lifetime_limit(answer)
            if limit is None or limit >= lifetime:
                break
            lifetime = limit * 0.95
        return self._http.check(answer, (ok,))

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> Handshake | tuple[Notification, ...]:
        """A validation request (``validationToken`` in the query) or a ``value[]`` batch of
        change and lifecycle items."""
        if "validationToken" in query:
            return Handshake(token=query["validationToken"])
        try:
            payload = json.loads(body)
        except ValueError:
            raise InvalidNotification("microsoft: body is not JSON") from None
        items = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise InvalidNotification("microsoft: body has no value[] items")
        if len(items) > MAX_BATCH_ITEMS:
            raise InvalidNotification(f"microsoft: more than {MAX_BATCH_ITEMS} items in one notification")
        return tuple(_item(item) for item in items)


def _item(item: object) -> Notification:
    if not isinstance(item, dict) or not isinstance(item.get("subscriptionId"), str):
        raise InvalidNotification("microsoft: an item has no subscriptionId")
    subscription_id = item["subscriptionId"]
    secret = item.get("clientState")
    secret = secret if isinstance(secret, str) else None
    if "lifecycleEvent" in item:
        try:
            event = LifecycleEvent(item["lifecycleEvent"])
        except ValueError:
            raise InvalidNotification("microsoft: unknown lifecycleEvent") from None
        expiry = item.get("subscriptionExpirationDateTime")
        return Lifecycle(subscription_id, secret, event, f"{subscription_id}:{event.value}:{expiry}")
    change = item.get("changeType")
    if not isinstance(change, str):
        raise InvalidNotification("microsoft: an item has neither changeType nor lifecycleEvent")
    data = item.get("resourceData") if isinstance(item.get("resourceData"), dict) else {}
    assert isinstance(data, dict)
    target = data.get("id") or item.get("resource")
    key = f"{subscription_id}:{change}:{target}:{data.get('@odata.etag')}"
    return Changed(subscription_id=subscription_id, secret=secret, dedupe_key=key)


def _subscription(data: Mapping[str, Any], calendar_id: str) -> Subscription:
    if not isinstance(data.get("id"), str):
        raise ProviderError("microsoft: the subscription answer has no id")
    return Subscription(
        id=data["id"], calendar_id=calendar_id, expires_at=parse_graph_time(data.get("expirationDateTime"))
    )
