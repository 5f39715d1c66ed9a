"""Push notifications: watch channels on a calendar's events and the notifications they send.

``events.watch`` (a calendar's events) and ``calendarList.watch`` (an account's calendar list)
create a :class:`Channel` and send the ``sync`` message (number 1); every later change to the
watched collection sends ``exists`` with the next message number, and removing a watched
calendar sends ``not_exists`` and ends its channels. A notification is
``POST <address>`` with an empty body (no ``Content-Type``), Google's ``User-Agent`` and the
``X-Goog-*`` headers of Google's push guide.
Nothing is sent after the channel's expiration or after ``channels.stop``. Delivery goes through
the shared :class:`NotificationDispatcher` (background tasks, faults applied).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

from chronapilot.sandbox.google.errors import ApiError, bad_request, not_found, required_field
from chronapilot.sandbox.google.store import Calendar, Change
from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.delivery import Delivery, NotificationDispatcher

PUSH_USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
DEFAULT_TTL_SECONDS = 604800
MAX_TTL_SECONDS = 30 * 86400
_CHANNEL_ID = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")
_CHANNEL_TYPES = ("web_hook", "webhook")


@dataclass
class Channel:
    """A notification channel on one calendar's events."""

    id: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    watched: str
    owner_sub: str
    message_number: int = 0

    def to_json(self) -> dict[str, Any]:
        """The events.watch response."""
        body: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
        }
        if self.token is not None:
            body["token"] = self.token
        body["expiration"] = str(self.expiration_ms)
        return body


class Channels:
    """Live channels and the notifications they send."""

    def __init__(self, clock: SandboxClock, dispatcher: NotificationDispatcher, base_url: str) -> None:
        self._clock = clock
        self._dispatcher = dispatcher
        self._base_url = base_url.rstrip("/")
        self.channels: dict[str, Channel] = {}
        self._resource_ids: dict[str, str] = {}

    def watch_events(self, calendar: Calendar, owner_sub: str, body: dict[str, Any]) -> Channel:
        """events.watch on ``calendar``."""
        path = f"/calendar/v3/calendars/{quote(calendar.id, safe='')}/events"
        return self._watch(f"events:{calendar.id}", path, owner_sub, body)

    def watch_calendar_list(self, owner_sub: str, body: dict[str, Any]) -> Channel:
        """calendarList.watch on the caller's calendar list."""
        return self._watch(f"calendarList:{owner_sub}", "/calendar/v3/users/me/calendarList", owner_sub, body)

    def _watch(self, watched: str, path: str, owner_sub: str, body: dict[str, Any]) -> Channel:
        """Validate the request, create the channel, send ``sync``."""
        channel_id = body.get("id")
        if not channel_id:
            raise required_field("Required")
        if not isinstance(channel_id, str) or not _CHANNEL_ID.match(channel_id):
            raise bad_request(f"Invalid channel id: {channel_id}", "invalid")
        if body.get("type") not in _CHANNEL_TYPES:
            raise bad_request(f"Unknown channel type: {body.get('type')}", "invalid")
        address = body.get("address")
        if not isinstance(address, str) or urlsplit(address).scheme not in ("http", "https"):
            raise bad_request(f"Invalid address: {address}", "invalid")
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise bad_request("Channel token is too long.", "invalid")
        self._forget_expired()
        if channel_id in self.channels:
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        channel = Channel(
            id=channel_id,
            resource_id=self._resource_id(watched),
            resource_uri=f"{self._base_url}{path}?alt=json",
            address=address,
            token=token,
            expiration_ms=self._expiration_ms(body),
            watched=watched,
            owner_sub=owner_sub,
        )
        self.channels[channel.id] = channel
        self._notify(channel, "sync")
        return channel

    def stop(self, owner_sub: str, body: dict[str, Any]) -> None:
        """channels.stop: 404 for an unknown channel or a resourceId that is not the channel's."""
        channel = self.channels.get(str(body.get("id")))
        if channel is None or channel.owner_sub != owner_sub:
            raise not_found()
        if body.get("resourceId") not in (None, channel.resource_id):
            raise not_found()
        del self.channels[channel.id]

    def announce(self, change: Change) -> None:
        """Send what ``change`` means to the channels watching what changed."""
        self._forget_expired()
        if change.events_of is not None:
            self._notify_all(f"events:{change.events_of.id}", "exists")
        if change.calendar_list_of is not None:
            self._notify_all(f"calendarList:{change.calendar_list_of.sub}", "exists")
        if change.removed is not None:
            watched = f"events:{change.removed.id}"
            self._notify_all(watched, "not_exists")
            for channel_id in [c.id for c in self.channels.values() if c.watched == watched]:
                del self.channels[channel_id]

    def _notify_all(self, watched: str, state: str) -> None:
        for channel in [c for c in self.channels.values() if c.watched == watched]:
            self._notify(channel, state)

    def _notify(self, channel: Channel, state: str) -> None:
        channel.message_number += 1
        headers = {
            "User-Agent": PUSH_USER_AGENT,
            "Accept": "*/*",
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.message_number),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        self._dispatcher.dispatch(Delivery(url=channel.address, stream=channel.id, headers=headers))

    def _expiration_ms(self, body: dict[str, Any]) -> int:
        now_ms = self._clock.now_ms()
        ttl = DEFAULT_TTL_SECONDS
        params = body.get("params") or {}
        if "ttl" in params:
            try:
                ttl = int(params["ttl"])
            except (TypeError, ValueError):
                raise bad_request(f"Invalid ttl value: {params['ttl']}", "invalid") from None
        elif body.get("expiration") is not None:
            try:
                return min(int(body["expiration"]), now_ms + MAX_TTL_SECONDS * 1000)
            except (TypeError, ValueError):
                raise bad_request("Invalid expiration value.", "invalid") from None
        if ttl <= 0:
            raise bad_request(f"Invalid ttl value: {ttl}", "invalid")
        return now_ms + min(ttl, MAX_TTL_SECONDS) * 1000

    def _resource_id(self, watched: str) -> str:
        if watched not in self._resource_ids:
            self._resource_ids[watched] = secrets.token_urlsafe(20).replace("-", "a").replace("_", "b")
        return self._resource_ids[watched]

    def _forget_expired(self) -> None:
        now_ms = self._clock.now_ms()
        for channel_id in [c.id for c in self.channels.values() if c.expiration_ms <= now_ms]:
            del self.channels[channel_id]

    def to_json(self) -> dict[str, Any]:
        """State-file form."""
        return {
            "channels": [asdict(channel) for channel in self.channels.values()],
            "resource_ids": dict(self._resource_ids),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Reload :meth:`to_json` output."""
        self.channels = {}
        for item in data.get("channels", []):
            if "calendar_id" in item:  # state files written before calendarList.watch existed
                item = {key: value for key, value in item.items() if key != "calendar_id"} | {
                    "watched": f"events:{item['calendar_id']}"
                }
            self.channels[item["id"]] = Channel(**item)
        self._resource_ids = dict(data.get("resource_ids", {}))
