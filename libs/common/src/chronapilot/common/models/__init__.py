"""MongoDB document models (pydantic)."""

from chronapilot.common.models.base import Document
from chronapilot.common.models.connection import (
    Connection,
    ConnectionError_,
    ConnectionStatus,
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
    "Connection",
    "ConnectionError_",
    "ConnectionStatus",
    "Credentials",
    "Document",
    "Provider",
    "SyncMode",
    "TokenRefreshTelemetry",
    "User",
    "WebhookSubscriptionState",
]
