"""Google push: watch channels on a calendar's events (``events.watch``, ``channels.stop``).

Quirks kept here (developers.google.com/calendar/api/guides/push):

- a channel cannot be renewed: :meth:`GooglePush.renew_subscription` creates a new channel (a
  new id of ours, a new token), lets the caller switch to it, then stops the old one, so the
  two overlap and no change falls between them;
- ``expiration`` comes back as a *string* of milliseconds and may be shorter than asked;
- a notification has an empty body and says everything in ``X-Goog-*`` headers: the channel
  id, our token (absent if none was set), the resource state (``sync`` when the channel is
  created, then ``exists``, or ``not_exists`` when the calendar is gone) and a message number
  that increases per channel (the same number twice is the same notification): ASCII digits,
  at most 20 (a 64-bit number); anything else is an invalid notification;
- stopping a channel Google no longer knows answers 404: that counts as stopped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from chronapilot.common.errors import ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.http import ProviderHttp, header
from chronapilot.common.providers.push import (
    Changed,
    Handshake,
    InvalidNotification,
    Notification,
    Subscription,
    SwitchTo,
    authorized_call,
)

log = get_logger(__name__)

_STATES = {"sync": True, "exists": False, "not_exists": False}
#: ``X-Goog-Message-Number``: ASCII digits only (``str.isdigit`` also takes ``²``, which ``int``
#: refuses, and ``int`` takes other scripts' digits), few enough for a 64-bit number (``int``
#: refuses more than 4,300 digits).
_MESSAGE_NUMBER = re.compile(r"[0-9]{1,20}")


class GooglePush:
    """Google's :class:`~chronapilot.common.providers.push.PushSubscriptions`: the ``push``
    component of :class:`~chronapilot.common.providers.google.client.GoogleProvider`."""

    name = "google"
    renewable = False
    accepted_status = 200
    retries_client_errors = False

    def __init__(self, http: ProviderHttp, api_url: str) -> None:
        self._http = http
        self._api_url = api_url

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
        """``events.watch`` with a new channel id; Google has no lifecycle URL."""
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": notification_url,
            "token": secret,
            "params": {"ttl": str(max(1, int(ttl.total_seconds())))},
        }
        url = f"{self._api_url}/calendars/{quote(calendar_id, safe='')}/events/watch"
        channel = (await authorized_call(self._http, "POST", url, token, body=body)).json()
        try:
            expires_at = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
            return Subscription(
                id=str(channel["id"]),
                calendar_id=calendar_id,
                expires_at=expires_at,
                resource_id=str(channel["resourceId"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ProviderError("google: events.watch answer lacks id, resourceId or expiration") from None

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
        """A new channel, the caller switched to it, then the old one stopped (overlapping)."""
        renewed = await self.create_subscription(
            token,
            subscription.calendar_id,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            secret=secret,
            ttl=ttl,
        )
        await switch_to(renewed)
        try:
            await self.delete_subscription(token, subscription)
        except ProviderError as exc:  # the old channel runs out by itself
            log.warning("google.channel_stop_failed", channel_id=subscription.id, error=exc.code)
        return renewed

    async def delete_subscription(self, token: TokenSource, subscription: Subscription) -> None:
        """``channels.stop``; 404 (unknown or expired channel) counts as stopped."""
        body = {"id": subscription.id, "resourceId": subscription.resource_id}
        await authorized_call(
            self._http, "POST", f"{self._api_url}/channels/stop", token, body=body, ok=(200, 204, 404)
        )

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> Handshake | tuple[Notification, ...]:
        """One ``X-Goog-*`` notification (the body is empty and ignored)."""
        channel_id = header(headers, "X-Goog-Channel-ID")
        state = header(headers, "X-Goog-Resource-State")
        number = header(headers, "X-Goog-Message-Number")
        if not channel_id or not header(headers, "X-Goog-Resource-ID"):
            raise InvalidNotification("google: X-Goog-Channel-ID or X-Goog-Resource-ID missing")
        if state not in _STATES:
            raise InvalidNotification("google: X-Goog-Resource-State missing or unknown")
        if number is None or not _MESSAGE_NUMBER.fullmatch(number):
            raise InvalidNotification("google: X-Goog-Message-Number missing or not a number")
        return (
            Changed(
                subscription_id=channel_id,
                secret=header(headers, "X-Goog-Channel-Token"),
                dedupe_key=f"{channel_id}:{int(number)}",
                initial=_STATES[state],
            ),
        )
