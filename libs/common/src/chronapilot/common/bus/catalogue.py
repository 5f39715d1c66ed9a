"""The event catalogue: every event type ChronaPilot publishes, its schema and its topic.

This is a public interface: services outside ChronaPilot subscribe to these topics. An event
is a fact (past tense), immutable, carrying the minimum a subscriber needs. Changing an
event's shape means a new ``VERSION`` plus an upcaster from the previous one, so consumers
always see the latest shape (:func:`parse`). ``docs/events/`` is generated from this module
(``make docs``) and a test keeps the two equal.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chronapilot.common.bus.envelope import Envelope
from chronapilot.common.bus.topics import Topic
from chronapilot.common.errors import ChronaPilotError
from chronapilot.common.models.connection import Code, ConnectionStatus, Provider, SyncMode
from chronapilot.common.providers.push import LifecycleEvent


class UnknownEvent(ChronaPilotError):
    code = "unknown_event"


class Event(BaseModel):
    """Base of every event payload.

    Unknown fields are ignored: adding an optional field is a compatible change (same
    ``VERSION``); renaming, removing or retyping one needs a new version and an upcaster.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[Topic]


class SyncKind(enum.StrEnum):
    """What a sync reads: everything (`full`) or the changes since its cursor (`incremental`).
    Not the connection's `sync_mode` (`realtime` or `polling`: how changes reach it)."""

    FULL = "full"
    INCREMENTAL = "incremental"


class SubscriptionRemovalReason(enum.StrEnum):
    """Why the gateway removed a subscription."""

    DISCONNECTED = "disconnected"  # the connection is disconnected or no longer active
    NOT_SYNCED = "not_synced"  # the calendar is no longer part of the connection's sync
    CALENDAR_REMOVED = "calendar_removed"  # the provider no longer lists the calendar


class SyncReason(enum.StrEnum):
    INITIAL = "initial"
    WEBHOOK = "webhook"
    MANUAL = "manual"
    POLL = "poll"
    RESYNC = "resync"


# -- connections ------------------------------------------------------------------------------


class ConnectionActivated(Event):
    """A connection became active: first link, or the same account re-linked."""

    TYPE = "connection.activated"
    TOPIC = Topic.CONNECTIONS
    application_id: str
    user_id: str
    provider: Provider
    email: str
    relinked: bool = Field(default=False, description="True when an existing connection came back.")
    previous_status: ConnectionStatus | None = Field(
        default=None, description="A relink: the status it came back from."
    )
    previous_error_code: Code | None = Field(default=None, description="A relink: `error.code` before.")
    previous_error_message: str | None = None
    previous_error_at: datetime | None = None


class ConnectionDisconnected(Event):
    """The customer disconnected the connection; its owners tear down tokens and subscriptions."""

    TYPE = "connection.disconnected"
    TOPIC = Topic.CONNECTIONS
    application_id: str
    provider: Provider


class ConnectionStatusChanged(Event):
    """``status``, ``sync_mode`` or the error changed (for example to ``error`` with
    ``reauth_required``); the ``previous_*`` fields hold the values before."""

    TYPE = "connection.status_changed"
    TOPIC = Topic.CONNECTIONS
    status: ConnectionStatus
    previous_status: ConnectionStatus
    sync_mode: SyncMode | None = None
    previous_sync_mode: SyncMode | None = None
    error_code: Code | None = Field(default=None, description="Set while `status` is `error`.")
    error_message: str | None = None
    previous_error_code: Code | None = Field(default=None, description="`error.code` before, if any.")
    previous_error_message: str | None = None
    previous_error_at: datetime | None = None


class ConnectionSubscriptionsReleased(Event):
    """A disconnected connection's webhook subscriptions are stopped at the provider (or given
    up on, with the reason): the token refresher may now revoke the grant and delete the
    credentials (the subscriptions needed them to be stopped)."""

    TYPE = "connection.subscriptions_released"
    TOPIC = Topic.CONNECTIONS
    stopped: int = Field(ge=0, description="Provider subscriptions stopped.")
    failed: int = Field(
        ge=0, description="Provider subscriptions that could not be stopped (they run out by themselves)."
    )


# -- sync -------------------------------------------------------------------------------------


class SyncRequested(Event):
    """Sync a connection, or one calendar of it."""

    TYPE = "sync.requested"
    TOPIC = Topic.SYNC_REQUESTS
    mode: SyncKind
    reason: SyncReason
    calendar_id: str | None = Field(
        default=None, description="Provider calendar id; absent means every calendar."
    )


class SyncCompleted(Event):
    """A sync finished and the mirror is up to date as of ``synced_at``."""

    TYPE = "sync.completed"
    TOPIC = Topic.SYNC_RESULTS
    mode: SyncKind
    reason: SyncReason
    synced_at: datetime
    calendars: int = Field(ge=0)
    upserted: int = Field(ge=0)
    deleted: int = Field(ge=0)


class SyncFailed(Event):
    """A sync gave up; ``retryable`` says whether a later attempt may succeed."""

    TYPE = "sync.failed"
    TOPIC = Topic.SYNC_RESULTS
    mode: SyncKind
    reason: SyncReason
    error_code: str
    error_message: str
    retryable: bool
    calendar_id: str | None = Field(
        default=None,
        description="The mirror calendar (`cal_`) whose own failure failed the sync; absent when "
        "the failure was the connection's or the provider's.",
    )


# -- tokens -----------------------------------------------------------------------------------


class TokenRefreshed(Event):
    """A new access token was stored (``rotated``: a new refresh token came with it)."""

    TYPE = "token.refreshed"
    TOPIC = Topic.TOKENS
    expires_at: datetime | None
    rotated: bool = False


class TokenRefreshFailed(Event):
    """A refresh failed; ``permanent`` means the grant is gone and the user must re-link."""

    TYPE = "token.refresh_failed"
    TOPIC = Topic.TOKENS
    reason: str
    permanent: bool
    failures_count: int = Field(ge=0)


# -- subscriptions ----------------------------------------------------------------------------


class SubscriptionCreated(Event):
    """A webhook subscription (Google channel, Microsoft subscription) now covers a calendar."""

    TYPE = "subscription.created"
    TOPIC = Topic.SUBSCRIPTIONS
    subscription_id: str
    calendar_id: str
    expires_at: datetime


class SubscriptionRenewed(Event):
    """A subscription was renewed (Google: replaced by a new channel) until ``expires_at``."""

    TYPE = "subscription.renewed"
    TOPIC = Topic.SUBSCRIPTIONS
    subscription_id: str
    calendar_id: str
    expires_at: datetime


class SubscriptionRemoved(Event):
    """A subscription is gone (disconnect, provider removal, or fallback to polling)."""

    TYPE = "subscription.removed"
    TOPIC = Topic.SUBSCRIPTIONS
    subscription_id: str
    calendar_id: str
    reason: SubscriptionRemovalReason


class SubscriptionLifecycleNotified(Event):
    """The provider sent a lifecycle notification about a subscription (Microsoft:
    ``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``); the gateway acts on it
    off the request path."""

    TYPE = "subscription.lifecycle_notified"
    TOPIC = Topic.SUBSCRIPTIONS
    subscription_id: str
    calendar_id: str
    lifecycle_event: LifecycleEvent


# -- the mirror -------------------------------------------------------------------------------


class MirrorEventsChanged(Event):
    """One write of the mirror (a sync's page, or a full sync's deletions) changed these events
    of one calendar, as ``evt_`` ids; a write that changed nothing emits nothing. An event the
    mirror held deleted and holds again counts as created; the members of a deleted series are
    deleted with it. Each list holds at most :data:`MIRROR_IDS_PER_MESSAGE` ids between them
    (a bigger write is told in several messages)."""

    TYPE = "mirror.events_changed"
    TOPIC = Topic.MIRROR
    application_id: str
    calendar_id: str = Field(description="The mirror calendar (`cal_`).")
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)


class MirrorCalendarsChanged(Event):
    """Reading the provider's calendar list changed these mirror calendars (``cal_`` ids):
    new ones (or ones listed again after being removed), ones whose name, colour, time zone,
    ``read_only`` or ``primary`` changed, and ones the provider no longer lists."""

    TYPE = "mirror.calendars_changed"
    TOPIC = Topic.MIRROR
    application_id: str
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


#: The most ids one ``mirror.events_changed`` carries: a message stays far below the broker's
#: size limit (and its consumers' single read of the events) however big a full sync's write is.
MIRROR_IDS_PER_MESSAGE = 500

EVENT_TYPES: tuple[type[Event], ...] = (
    ConnectionActivated,
    ConnectionDisconnected,
    ConnectionStatusChanged,
    ConnectionSubscriptionsReleased,
    SyncRequested,
    SyncCompleted,
    SyncFailed,
    TokenRefreshed,
    TokenRefreshFailed,
    SubscriptionCreated,
    SubscriptionRenewed,
    SubscriptionRemoved,
    SubscriptionLifecycleNotified,
    MirrorEventsChanged,
    MirrorCalendarsChanged,
)

CATALOGUE: dict[str, type[Event]] = {event.TYPE: event for event in EVENT_TYPES}

#: ``(type, from_version) -> function`` turning ``data`` of that version into the next one.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

E = TypeVar("E", bound=Event)


def wrap(event: Event, connection_id: str) -> Envelope:
    """Put ``event`` in an envelope for ``connection_id``."""
    return Envelope(
        type=event.TYPE,
        version=event.VERSION,
        connection_id=connection_id,
        data=event.model_dump(mode="json"),
    )


def parse(envelope: Envelope) -> Event:
    """The envelope's payload as its event model, upcast to the latest version."""
    model = CATALOGUE.get(envelope.type)
    if model is None:
        raise UnknownEvent(f"unknown event type {envelope.type!r}")
    data, version = dict(envelope.data), envelope.version
    if version > model.VERSION:
        raise UnknownEvent(f"{envelope.type} v{version} is newer than this code (v{model.VERSION})")
    while version < model.VERSION:
        data = UPCASTERS[(envelope.type, version)](data)
        version += 1
    return model.model_validate(data)


def parse_as(envelope: Envelope, model: type[E]) -> E:
    """Like :func:`parse`, asserting the event is a ``model``."""
    event = parse(envelope)
    if not isinstance(event, model):
        raise UnknownEvent(f"expected {model.TYPE}, got {envelope.type}")
    return event
