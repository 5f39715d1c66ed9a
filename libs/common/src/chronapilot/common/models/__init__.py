"""MongoDB document models (pydantic)."""

from chronapilot.common.models.base import StoredModel
from chronapilot.common.models.connection import (
    Code,
    Connection,
    ConnectionStatus,
    ErrorInfo,
    Provider,
    SyncMode,
    TokenRefreshTelemetry,
    WebhookSubscriptionState,
)
from chronapilot.common.models.credentials import Credentials
from chronapilot.common.models.tenancy import ApiKey, Application, User

__all__ = [
    "ApiKey",
    "Application",
    "Code",
    "Connection",
    "ConnectionStatus",
    "Credentials",
    "ErrorInfo",
    "Provider",
    "StoredModel",
    "SyncMode",
    "TokenRefreshTelemetry",
    "User",
    "WebhookSubscriptionState",
]
