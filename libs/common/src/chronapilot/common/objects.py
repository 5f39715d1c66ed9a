"""The public REST objects (connection, calendar, event) and their renderers from stored documents.

``GET /v1/connections/{id}``, ``GET /v1/calendars/{id}`` and ``GET /v1/events/{id}`` show these,
and so does every customer webhook that carries an object (ARCHITECTURE §9): they live here,
not in the API, so the webhook producers render an object exactly as the API does. The API's
OpenAPI document is built from the same models (``chronapilot.api.schemas`` re-exports them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chronapilot.common.clock import isoformat_z
from chronapilot.common.models import Connection
from chronapilot.common.models.connection import CODE_MEANINGS, ERROR_CODES
from chronapilot.common.providers.sync import OPAQUE
from chronapilot.common.store import Document
from chronapilot.common.store.repositories import Repositories

ERROR_CODES_DESCRIPTION = "Why the connection is in `error`: " + "; ".join(
    f"`{code.value}`: {meaning}" for code, meaning in CODE_MEANINGS.items() if code in ERROR_CODES
)
HISTORY_CODES_DESCRIPTION = "What moved the connection: " + "; ".join(
    f"`{code.value}`: {meaning}" for code, meaning in CODE_MEANINGS.items()
)

ProviderName = Literal["google", "microsoft", "icloud"]
ConnectionStatusName = Literal["active", "disconnected", "error"]
SyncModeName = Literal["realtime", "polling"]


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict, datetimes as ISO 8601 UTC with ``Z``."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return isoformat_z(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(model.model_dump(mode="python"))  # type: ignore[no-any-return]


# -- calendars --------------------------------------------------------------------------------


class CalendarErrorObject(BaseModel):
    code: str = Field(
        description=(
            "`calendar_forbidden` (the provider answered 403 for this calendar), "
            "`calendar_not_found` (404/410), `calendar_sync_failed` (another error)."
        )
    )
    message: str
    at: datetime


class CalendarObject(BaseModel):
    id: str = Field(description="Prefixed `cal_`.")
    object: Literal["calendar"] = "calendar"
    connection_id: str
    provider_calendar_id: str
    name: str
    primary: bool
    read_only: bool
    timezone: str | None
    color: str | None
    removed: bool = Field(description="Gone at the provider; its mirrored events are kept.")
    sync_status: Literal["ok", "error"] | None = Field(
        default=None,
        description=(
            "`ok` after the calendar's last sync succeeded; `error` when the provider refused it "
            "(403/404: it is skipped, the other calendars sync); null before its first sync."
        ),
    )
    last_synced_at: datetime | None = Field(default=None, description="The calendar's last successful sync.")
    error: CalendarErrorObject | None = Field(default=None, description="Why `sync_status` is `error`.")
    created_at: datetime
    updated_at: datetime


def render_calendar(raw: Document) -> CalendarObject:
    """The calendar object of a stored calendar (``dump`` it for the JSON the API sends)."""
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
        sync_status=raw.get("sync_status"),
        last_synced_at=raw.get("last_synced_at"),
        error=CalendarErrorObject(**raw["error"]) if raw.get("error") else None,
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
    )


# -- connections ------------------------------------------------------------------------------


class WebhookSubscriptionObject(BaseModel):
    id: str
    expires_at: datetime


class TokenRefreshObject(BaseModel):
    last_at: datetime | None = Field(description="The last successful refresh; null before the first.")
    failures_count: int = Field(description="Consecutive failed refreshes (0 after a success).")
    next_at: datetime | None = Field(
        default=None,
        description="When ChronaPilot will next refresh the access token: its expiry minus the "
        "refresh margin (set from consent on), or the retry time after a failed refresh. Null "
        "when nothing will be refreshed: the connection is disconnected or needs "
        "re-authorisation, or its credential does not expire (iCloud's app-specific password).",
    )
    last_error: str | None = Field(
        default=None, description="Why the last refresh failed; null after a success."
    )


class ConnectionErrorObject(BaseModel):
    code: str = Field(description=ERROR_CODES_DESCRIPTION)
    message: str
    at: datetime


class StatusHistoryEntryObject(BaseModel):
    status: ConnectionStatusName
    sync_mode: SyncModeName
    code: str = Field(description=HISTORY_CODES_DESCRIPTION)
    message: str | None
    at: datetime


class RevocationObject(BaseModel):
    outcome: Literal["revoked", "not_supported", "failed", "skipped_shared_grant", "no_credentials"] = Field(
        description=(
            "`revoked` at the provider; `not_supported` (Microsoft and iCloud have no client "
            "revocation); `failed` (see `error`); `skipped_shared_grant` (another live connection "
            "holds the same provider account, so the shared grant was kept); `no_credentials`."
        )
    )
    error: str | None = None
    at: datetime


class ConnectionObject(BaseModel):
    id: str = Field(description="Prefixed `con_`.")
    object: Literal["connection"] = "connection"
    provider: ProviderName
    status: ConnectionStatusName
    email: str = Field(description="The provider account's e-mail address.")
    sync_mode: SyncModeName
    last_synced_at: datetime | None
    # Objects first: a generated client tries the members in order, and a list of objects
    # would pass for `list[str]` in one that does not check the items.
    calendars: list[CalendarObject] | list[str] = Field(
        description="Calendar objects with `expand[]=calendars`, else calendar ids."
    )
    webhook_subscription: WebhookSubscriptionObject | None
    token_refresh: TokenRefreshObject
    created_at: datetime
    user_id: str
    error: ConnectionErrorObject | None
    disconnected_at: datetime | None
    revoked_at: datetime | None
    revocation: RevocationObject | None = Field(
        default=None, description="How the disconnect ended the grant (after `revoked_at`)."
    )
    status_history: list[StatusHistoryEntryObject] | None = Field(
        default=None,
        description="With `expand[]=status_history`: the last 100 transitions, newest first.",
    )


def render_connection(
    raw: Document, calendars: list[Document] | None = None, history: list[Document] | None = None
) -> dict[str, Any]:
    """The connection object; ``calendars`` given → expanded inline, else their ids;
    ``history`` given → ``status_history`` (else the field is left out)."""
    connection = Connection.from_mongo(raw)
    telemetry = connection.token_refresh
    body = dump(
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
            revocation=_revocation(raw.get("revocation")),
            status_history=None if history is None else [_history_entry(entry) for entry in history],
        )
    )
    if history is None:
        del body["status_history"]
    return body


def _history_entry(entry: Document) -> StatusHistoryEntryObject:
    return StatusHistoryEntryObject(
        status=entry["status"],
        sync_mode=entry["sync_mode"],
        code=entry["code"],
        message=entry.get("message"),
        at=entry["at"],
    )


def _revocation(raw: Document | None) -> RevocationObject | None:
    if not raw or raw.get("outcome") is None:
        return None
    return RevocationObject(outcome=raw["outcome"], error=raw.get("error"), at=raw["at"])


# -- events -----------------------------------------------------------------------------------

Transparency = Literal["opaque", "transparent"]
TRANSPARENCY_DESCRIPTION = (
    "`opaque`: the event blocks its calendar owner's time (counted by free/busy); `transparent`: "
    "it does not (Google `transparency`, iCalendar `TRANSP`; Microsoft `showAs` `free` and "
    "`workingElsewhere` are transparent, the others opaque)."
)


class EventTimeObject(BaseModel):
    date_time: datetime | None = Field(description="The instant, UTC (timed events).")
    date: str | None = Field(description="`YYYY-MM-DD` (all-day events; end is exclusive).")
    timezone: str | None = Field(description="IANA time zone the event was written in.")


class PersonObject(BaseModel):
    email: str
    name: str | None
    response_status: str = Field(description="`needsAction`, `accepted`, `declined`, `tentative`.")
    optional: bool
    organizer: bool


#: A member of a union told apart by ``object`` (``EventList.data``): the discriminator is
#: always sent, so the schema requires it (as it does every field the server always sends).
DISCRIMINATED = ConfigDict(json_schema_serialization_defaults_required=True)


class EventObject(BaseModel):
    model_config = DISCRIMINATED

    id: str = Field(description="Prefixed `evt_`.")
    object: Literal["event"] = "event"
    calendar_id: str
    connection_id: str
    provider_event_id: str
    ical_uid: str | None
    title: str | None
    description: str | None
    location: str | None
    start: EventTimeObject | None
    end: EventTimeObject | None
    all_day: bool
    status: str = Field(description="`confirmed`, `tentative` or `cancelled`.")
    transparency: Transparency = Field(description=TRANSPARENCY_DESCRIPTION)
    recurrence: list[str] = Field(description="RRULE/EXDATE/RDATE lines of a recurring master.")
    recurring_event_id: str | None = Field(description="The master's `evt_` id, for exceptions.")
    provider_recurring_event_id: str | None
    original_start: EventTimeObject | None = Field(description="Exceptions: the slot they replace.")
    organizer: PersonObject | None
    attendees: list[PersonObject]
    etag: str | None = Field(description="The provider's etag / changeKey.")
    deleted: bool = Field(description="Deleted at the provider (listed only with include_deleted).")
    provider_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime = Field(description="When the mirror last changed this event.")


def event_time(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored event time (``start``, ``end``, ``original_start``) as an event time object."""
    return (
        None
        if value is None
        else {
            "date_time": value.get("date_time"),
            "date": value.get("date"),
            "timezone": value.get("timezone"),
        }
    )


def stored_fields(
    raw: Mapping[str, Any], masters: Mapping[str, str], provider_master: str | None
) -> dict[str, Any]:
    """What an event object and an occurrence object both show of the stored event ``raw``;
    ``masters``: provider id → ``evt_`` id of the recurring masters (:func:`recurring_masters`)."""
    return {
        "calendar_id": raw["calendar_id"],
        "connection_id": raw["connection_id"],
        "provider_event_id": raw["provider_event_id"],
        "ical_uid": raw.get("ical_uid"),
        "title": raw.get("title"),
        "description": raw.get("description"),
        "location": raw.get("location"),
        "transparency": raw.get("transparency", OPAQUE),
        "recurring_event_id": masters.get(provider_master) if provider_master else None,
        "provider_recurring_event_id": provider_master,
        "organizer": raw.get("organizer"),
        "attendees": raw.get("attendees", []),
        "etag": raw.get("etag"),
        "provider_updated_at": raw.get("provider_updated_at"),
        "updated_at": raw["updated_at"],
    }


def render_event(raw: Document, masters: Mapping[str, str]) -> dict[str, Any]:
    """The event object of a stored event; ``masters`` as :func:`recurring_masters` gives them."""
    return dump(
        EventObject(
            id=raw["_id"],
            start=event_time(raw.get("start")),
            end=event_time(raw.get("end")),
            all_day=raw.get("all_day", False),
            status=raw.get("status", "confirmed"),
            recurrence=raw.get("recurrence", []),
            original_start=event_time(raw.get("original_start")),
            deleted=raw.get("deleted", False),
            created_at=raw["created_at"],
            **stored_fields(raw, masters, raw.get("recurring_event_id")),
        )
    )


async def recurring_masters(repos: Repositories, docs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Provider id → ``evt_`` id of the recurring masters that ``docs``' exceptions point at
    (one query for them all), for :func:`render_event`'s ``recurring_event_id``."""
    return await repos.events.ids_by_provider_id(
        (d["connection_id"], d["provider_calendar_id"], d["recurring_event_id"])
        for d in docs
        if d.get("recurring_event_id")
    )
