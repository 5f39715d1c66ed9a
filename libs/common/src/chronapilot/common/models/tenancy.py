"""Applications (tenants, with hashed API keys) and their users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from chronapilot.common.models.base import StoredModel


class ApiKey(BaseModel):
    id: str
    hash: str  # sha256 hex of the key; the key itself is shown once and never stored
    prefix: str  # first characters, to recognise a key in a list
    created_at: datetime
    revoked_at: datetime | None = None


class Application(StoredModel):
    name: str
    api_keys: list[ApiKey] = Field(default_factory=list)
    return_url_prefixes: list[str] = Field(default_factory=list)
    created_at: datetime


class User(StoredModel):
    application_id: str
    external_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
