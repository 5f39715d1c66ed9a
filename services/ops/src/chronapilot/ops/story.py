"""One connection's story, as an operator needs it: where it is and how it got there, its
calendars and their sync state, its webhook subscriptions, its token telemetry, its last
errors, and how far its teardown went. The console's connection page and the CLI's
``connections inspect`` read it from here.

Nothing secret is ever in it: credentials contribute only their kind, scopes, expiry and
whether they are held; subscriptions only ids, status and expiry (never a secret or its hash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chronapilot.common.runtime import Runtime
from chronapilot.common.store import Document

#: The connection fields shown as they are (everything else stays internal).
CONNECTION_FIELDS = (
    "_id",
    "application_id",
    "user_id",
    "provider",
    "email",
    "status",
    "sync_mode",
    "error",
    "last_synced_at",
    "created_at",
    "updated_at",
    "disconnected_at",
    "revoked_at",
    "revocation",
    "manual_refresh_at",
    "next_poll_at",
    "retry",
    "webhook_subscription",
)


@dataclass(frozen=True)
class LastError:
    """An error the connection or one of its parts last recorded."""

    source: str
    code: str
    message: str
    at: datetime | None


@dataclass(frozen=True)
class ConnectionStory:
    connection: dict[str, Any]
    history: list[Document]
    calendars: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    token: dict[str, Any]
    credentials: dict[str, Any] | None
    teardown: dict[str, Any] | None
    last_errors: list[LastError] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.connection["_id"])

    @property
    def teardown_incomplete(self) -> bool:
        return self.connection.get("status") == "disconnected" and self.connection.get("revoked_at") is None


async def find_connections(runtime: Runtime, query: str) -> list[Document]:
    """Connections whose id is ``query`` or whose account e-mail is ``query`` (any case)."""
    return await runtime.repos.fleet.search(query)


async def connection_story(runtime: Runtime, connection_id: str) -> ConnectionStory | None:
    raw = await runtime.connections.get(connection_id)
    if raw is None:
        return None
    connection = {key: raw.get(key) for key in CONNECTION_FIELDS}
    calendars = [_calendar(doc) for doc in await runtime.repos.calendars.of_connections([connection_id])]
    subscriptions = [
        _subscription(doc) for doc in await runtime.repos.webhook_subscriptions.states_of(connection_id)
    ]
    credentials_doc = await runtime.repos.credentials.get(connection_id)
    credentials = None if credentials_doc is None else _credentials(credentials_doc)
    token = dict(raw.get("token_refresh") or {})
    story = ConnectionStory(
        connection=connection,
        history=await runtime.connections.history(connection_id, limit=50),
        calendars=calendars,
        subscriptions=subscriptions,
        token=token,
        credentials=credentials,
        teardown=raw.get("teardown"),
    )
    story.last_errors.extend(_last_errors(raw, calendars, subscriptions))
    return story


def _calendar(doc: Document) -> dict[str, Any]:
    error = doc.get("error") or {}
    return {
        "id": doc["_id"],
        "name": doc.get("name"),
        "primary": bool(doc.get("primary")),
        "removed": bool(doc.get("removed")),
        "sync_status": doc.get("sync_status") or "pending",
        "last_synced_at": doc.get("last_synced_at"),
        "error_code": error.get("code"),
        "error_message": error.get("message"),
        "error_at": error.get("at"),
    }


def _subscription(doc: Document) -> dict[str, Any]:
    channels = doc.get("channels") or []
    ends = [c["expires_at"] for c in channels if c.get("expires_at")]
    return {
        "id": doc["_id"],
        "calendar_id": doc.get("calendar_id"),
        "status": doc.get("status"),
        "channels": [c.get("id") for c in channels],
        "expires_at": max(ends) if ends else None,
        "due_at": doc.get("due_at"),
        "attempts": doc.get("attempts", 0),
        "last_error": doc.get("last_error"),
        "updated_at": doc.get("updated_at"),
    }


def _credentials(doc: Document) -> dict[str, Any]:
    return {
        "held": True,
        "kind": doc.get("kind") or "legacy",
        "scopes": list(doc.get("scopes") or []),
        "access_expires_at": doc.get("access_expires_at"),
        "refresh_retry_at": doc.get("refresh_retry_at"),
        "updated_at": doc.get("updated_at"),
    }


def _last_errors(
    raw: Document, calendars: list[dict[str, Any]], subscriptions: list[dict[str, Any]]
) -> list[LastError]:
    errors: list[LastError] = []
    if error := raw.get("error"):
        errors.append(
            LastError("connection", str(error.get("code")), str(error.get("message")), error.get("at"))
        )
    token = raw.get("token_refresh") or {}
    if token.get("last_error"):
        errors.append(
            LastError("token refresh", "token_refresh", str(token["last_error"]), token.get("last_at"))
        )
    for calendar in calendars:
        if calendar["error_code"]:
            errors.append(
                LastError(
                    f"calendar {calendar['name'] or calendar['id']}",
                    str(calendar["error_code"]),
                    str(calendar["error_message"]),
                    calendar["error_at"],
                )
            )
    for subscription in subscriptions:
        if subscription["last_error"]:
            errors.append(
                LastError(
                    f"subscription {subscription['id']}",
                    "subscription",
                    str(subscription["last_error"]),
                    subscription["updated_at"],
                )
            )
    revocation = raw.get("revocation") or {}
    if revocation.get("outcome") == "failed":
        errors.append(
            LastError("revocation", "revocation_failed", str(revocation.get("error")), revocation.get("at"))
        )
    for failed in (raw.get("teardown") or {}).get("failed_subscriptions") or []:
        errors.append(
            LastError("teardown", "subscription_not_stopped", str(failed.get("error")), failed.get("at"))
        )
    return errors
