"""The connection: a user's link to one provider account (the spec's object plus internals)."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, Field

from chronapilot.common.models.base import StoredModel


class Provider(enum.StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    ICLOUD = "icloud"


class ConnectionStatus(enum.StrEnum):
    ACTIVE = "active"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class SyncMode(enum.StrEnum):
    REALTIME = "realtime"
    POLLING = "polling"


class Code(enum.StrEnum):
    """Why a connection is where it is: ``error.code`` and the ``code`` of each history entry."""

    # error codes (``error.code`` while ``status`` is ``error``)
    REAUTH_REQUIRED = "reauth_required"
    TOKEN_REFRESH_FAILED = "token_refresh_failed"
    SYNC_FAILED = "sync_failed"
    # what moved the connection (history entries only)
    ACTIVATED = "activated"
    RELINKED = "relinked"
    RECOVERED = "recovered"
    REALTIME = "realtime"
    POLLING_FALLBACK = "polling_fallback"
    DISCONNECTED = "disconnected"


#: The meaning of every code, as the OpenAPI description and the README list them (here, beside
#: the codes, so the REST objects' schemas can describe them without the state machine).
CODE_MEANINGS: dict[Code, str] = {
    Code.REAUTH_REQUIRED: (
        "The provider no longer accepts the grant (refresh `invalid_grant`, a 401 after a forced "
        "refresh, Microsoft Graph 403 on the account, a CalDAV 401). Nothing is retried; the user "
        "must link the account again (same `con_` id comes back `active`)."
    ),
    Code.TOKEN_REFRESH_FAILED: (
        "Refreshing the access token failed repeatedly for a transient reason (provider down, "
        "throttled, timeouts). Retried with backoff; the next success returns it to `active`."
    ),
    Code.SYNC_FAILED: (
        "A sync failed after its retries (provider errors, 5xx, throttling beyond the cap). "
        "Retried by the schedule with backoff capped at the poll interval; the next successful "
        "sync returns it to `active`."
    ),
    Code.ACTIVATED: "The user gave consent; the connection was created.",
    Code.RELINKED: "The user linked the same provider account again; the same `con_` id is active again.",
    Code.RECOVERED: "A sync or token refresh succeeded after a retryable error; back to `active`.",
    Code.REALTIME: "Every synced calendar has a live webhook subscription; `sync_mode` is `realtime`.",
    Code.POLLING_FALLBACK: "Some synced calendar has no live webhook subscription; `sync_mode` is `polling`.",
    Code.DISCONNECTED: (
        "`DELETE /v1/connections/{id}`: subscriptions stopped, grant revoked, credentials deleted."
    ),
}

ERROR_CODES: frozenset[str] = frozenset({Code.REAUTH_REQUIRED, Code.TOKEN_REFRESH_FAILED, Code.SYNC_FAILED})


class ErrorInfo(BaseModel):
    """Why a connection is in ``error``: a stable code (``sync_failed``, ``reauth_required``)."""

    code: Code
    message: str
    at: datetime


class WebhookSubscriptionState(BaseModel):
    id: str
    expires_at: datetime


class TokenRefreshTelemetry(BaseModel):
    last_at: datetime | None = None
    failures_count: int = 0
    next_at: datetime | None = None
    last_error: str | None = None


class Connection(StoredModel):
    application_id: str
    user_id: str
    provider: Provider
    provider_account_id: str
    email: str
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    sync_mode: SyncMode = SyncMode.POLLING
    last_synced_at: datetime | None = None
    calendar_ids: list[str] = Field(default_factory=list)
    webhook_subscription: WebhookSubscriptionState | None = None
    token_refresh: TokenRefreshTelemetry = Field(default_factory=TokenRefreshTelemetry)
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
    disconnected_at: datetime | None = None
    revoked_at: datetime | None = None
    manual_refresh_at: datetime | None = None
    version: int = 0
