"""Provider credentials of one connection, sealed with :class:`~chronapilot.common.crypto.TokenCipher`.

Never read by the API handlers that render connections. ``_id`` is the connection id, which
is also the associated data of every ciphertext here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chronapilot.common.models.base import Document


class Credentials(Document):
    provider: str
    access_token: str | None = None  # ciphertext
    refresh_token: str | None = None  # ciphertext (iCloud: the app-specific password)
    access_expires_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    username: str | None = None  # iCloud: the Apple Account e-mail (Basic auth user)
    updated_at: datetime
    version: int = 0
