"""Push: webhook subscriptions and the notifications they bring.

Glossary:

- **subscription**: what makes a provider call ChronaPilot when a calendar's events change. Google
  calls it a *watch channel* (``events.watch``; the channel id is chosen by us, cannot be renewed,
  stopped with ``channels.stop``); Microsoft a *subscription* (``POST /subscriptions``; the id is
  Graph's, renewed by ``PATCH``, with a validation handshake and lifecycle notifications).
  :class:`Subscription` is the common value; ``id`` is the provider's id (the channel id for
  Google).
- **secret**: the value a provider echoes in every notification (Google ``X-Goog-Channel-Token``,
  Microsoft ``clientState``). ChronaPilot keeps only its hash (:func:`hash_secret`) and compares
  in constant time (:func:`secret_matches`).
- **notification**: one inbound request, parsed by :meth:`PushSubscriptions.parse_notification` into a
  :class:`Handshake` (answer it, nothing else) or a tuple of :class:`Changed` and
  :class:`Lifecycle` items (Graph batches several items in one request; Google sends one).
  Parsing is pure (no I/O) and raises :class:`InvalidNotification` for anything malformed;
  checking the secret needs the stored hash, so the caller does it with :func:`secret_matches`.

Push is a component of a provider, not a kind of provider: ``provider.push`` is a
:class:`PushSubscriptions` (Google, Microsoft) or None (iCloud: its connections are polled), so
a caller checks ``if provider.push is not None:`` once. Every method may raise the provider
errors of :mod:`chronapilot.common.providers.errors`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from chronapilot.common.errors import ChronaPilotError
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.http import Answer, ProviderHttp
from chronapilot.common.providers.telemetry import Operation

__all__ = [
    "Changed",
    "Handshake",
    "InvalidNotification",
    "Lifecycle",
    "LifecycleEvent",
    "Notification",
    "PushSubscriptions",
    "Subscription",
    "hash_secret",
    "secret_matches",
]


class InvalidNotification(ChronaPilotError):
    """An inbound request that is not a notification of this provider (missing or malformed
    headers, a body that is not the provider's JSON). Its message never quotes a secret."""

    code = "invalid_notification"


@dataclass(frozen=True)
class Subscription:
    """A live subscription on one calendar's events, as the provider answered it."""

    id: str
    calendar_id: str
    expires_at: datetime
    #: Google's ``resourceId`` (needed by ``channels.stop``); None for Microsoft.
    resource_id: str | None = None


@dataclass(frozen=True)
class Handshake:
    """Microsoft's validation request: answer ``200 text/plain`` with ``token``, at once."""

    token: str


class LifecycleEvent(enum.StrEnum):
    """Microsoft's lifecycle notifications, and what ChronaPilot does about each."""

    REAUTHORIZATION_REQUIRED = "reauthorizationRequired"  # renew now
    SUBSCRIPTION_REMOVED = "subscriptionRemoved"  # create a new one, sync the gap
    MISSED = "missed"  # some notifications were lost: sync


@dataclass(frozen=True)
class Changed:
    """Something in the subscribed calendar changed: an incremental sync is due.

    ``initial`` marks Google's ``sync`` message (the channel works; nothing changed).
    ``dedupe_key`` is the same for the same notification delivered twice.
    """

    subscription_id: str
    secret: str | None
    dedupe_key: str
    initial: bool = False

    def __repr__(self) -> str:  # the presented secret stays out of logs and tracebacks
        return f"Changed(subscription_id={self.subscription_id!r}, initial={self.initial!r})"


@dataclass(frozen=True)
class Lifecycle:
    """A lifecycle notification about subscription ``subscription_id``."""

    subscription_id: str
    secret: str | None
    event: LifecycleEvent
    dedupe_key: str

    def __repr__(self) -> str:
        return f"Lifecycle(subscription_id={self.subscription_id!r}, event={self.event.value!r})"


Notification = Changed | Lifecycle
#: Called by ``renew_subscription`` with the renewed subscription before the old one is dropped.
SwitchTo = Callable[[Subscription], Awaitable[None]]


class PushSubscriptions(Protocol):
    """The push component of a provider (``provider.push``): Google's and Microsoft's."""

    #: The provider's name (webhook URLs, metrics and the subscription directory use it).
    name: str
    #: A subscription's expiry can be extended in place (Microsoft); else (Google)
    #: :meth:`renew_subscription` creates a new one and stops the old.
    renewable: bool
    #: The status that acknowledges a notification (Google: 200; Microsoft: 202, "queued").
    accepted_status: int
    #: True when the provider retries any non-2xx answer (Microsoft, for up to 4 hours), so a
    #: notification for a subscription ChronaPilot no longer knows is best acknowledged; False
    #: when only 5xx are retried (Google), so a 4xx ends it.
    retries_client_errors: bool

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
        """Subscribe to ``calendar_id``'s events. ``ttl`` is a wish: the provider may shorten it
        (read ``expires_at``). Microsoft validates both URLs before answering; a failed
        handshake is a ``ProviderError``."""
        ...

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
        """Extend ``subscription``; return what now covers the calendar.

        With :attr:`renewable` (Microsoft) the same id gets a new expiry
        and keeps its secret (``secret`` is unused). Without it (Google) a new subscription with
        a new id and ``secret`` is created, ``switch_to(new)`` is awaited (the caller starts
        accepting its notifications), and only then is the old one stopped: both overlap, so no
        change falls between them. A subscription the provider no longer knows raises a
        ``ProviderError`` with status 404."""
        ...

    async def delete_subscription(self, token: TokenSource, subscription: Subscription) -> None:
        """Stop ``subscription``; one the provider no longer knows counts as stopped."""
        ...

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> Handshake | tuple[Notification, ...]:
        """Read one inbound request (pure, no I/O); :class:`InvalidNotification` if malformed."""
        ...


def hash_secret(secret: str) -> str:
    """What is stored instead of a subscription's secret (SHA-256, hex). Secrets are random
    (:func:`secrets.token_urlsafe`), so an unsalted hash reveals nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(presented: str | None, stored_hash: str) -> bool:
    """True when ``presented`` is the secret behind ``stored_hash``; constant time."""
    if presented is None:
        return False
    return hmac.compare_digest(hash_secret(presented), stored_hash)


async def authorized_call(
    http: ProviderHttp,
    method: str,
    url: str,
    token: TokenSource,
    *,
    body: Mapping[str, Any] | None = None,
    ok: Collection[int] = (200,),
) -> Answer:
    """A bearer-authenticated call with an optional JSON body; after a 401, one forced
    refresh and one retry (the rule of :meth:`ProviderHttp.authorized_json`)."""
    data = None if body is None else json.dumps(body, separators=(",", ":"))
    headers = {"Content-Type": "application/json"} if body is not None else {}

    async def send(force_refresh: bool) -> Answer:
        authorization = {"Authorization": f"Bearer {await token(force_refresh)}"}
        return await http.send(
            method, url, operation=Operation.SUBSCRIPTION, data=data, headers={**headers, **authorization}
        )

    answer = await send(False)
    if answer.status == 401:
        answer = await send(True)
    return http.check(answer, ok)
