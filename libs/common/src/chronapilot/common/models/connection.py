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
