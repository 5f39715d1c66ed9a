"""What a provider call can fail with; each provider's client translates statuses into these.

::

    ProviderError       (chronapilot.common.errors: retryable, retry_after, reauth_required)
     ├── InvalidGrant              the OAuth grant is gone (revoked, expired, rotated away,
     │                             consent missing): re-authentication required, never retried
     ├── InvalidCredentials        the provider refused the credentials (iCloud 401, an API's
     │                             401 after a forced refresh): re-authentication required
     ├── Throttled                 429, 503 with Retry-After, 403 quota: retry after ``retry_after``
     ├── Unavailable               5xx, timeouts, connection failures: retry with backoff
     ├── CursorExpired             a sync cursor is no longer valid: run a full sync
     └── NotSupported              the provider has no such capability (e.g. revocation)

The translation itself is one function per provider, next to its client
(``google/client.py``, ``microsoft/client.py``, ``icloud/caldav.py``), so every quirk of a
provider's errors lives in one place.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from chronapilot.common.errors import ProviderError

__all__ = [
    "CursorExpired",
    "InvalidCredentials",
    "InvalidGrant",
    "NotSupported",
    "ProviderError",
    "Throttled",
    "Unavailable",
    "retry_after_seconds",
]

#: The longest ``Retry-After`` taken at its word (a day): a larger one, or an unreadable one
#: like ``1e400``, must not push a connection's next sync out of reach or overflow a date.
RETRY_AFTER_MAX_S = 86400.0


class InvalidGrant(ProviderError):
    """The refresh token or code no longer works: the user must consent again."""

    code = "reauthentication_required"

    def __init__(self, message: str = "", *, status: int | None = None, provider_code: str | None = None):
        super().__init__(message, status=status, reauth_required=True)
        #: The provider's own code (``invalid_grant``, ``AADSTS70008``, …), for logs and support.
        self.provider_code = provider_code


class InvalidCredentials(ProviderError):
    """The provider refused the credentials themselves (a wrong or revoked app password)."""

    code = "invalid_credentials"

    def __init__(self, message: str = "", *, status: int | None = 401):
        super().__init__(message, status=status, reauth_required=True)


class Throttled(ProviderError):
    """Rate limited; ``retry_after`` is the provider's hint in seconds, when it gave one."""

    code = "provider_throttled"

    def __init__(self, message: str = "", *, status: int | None = 429, retry_after: float | None = None):
        super().__init__(message, status=status, retryable=True, retry_after=retry_after)


class Unavailable(ProviderError):
    """The provider failed or could not be reached in time; transient."""

    code = "provider_unavailable"

    def __init__(self, message: str = "", *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status=status, retryable=True, retry_after=retry_after)


class CursorExpired(ProviderError):
    """The stored sync cursor is dead: drop it and run a full sync."""

    code = "cursor_expired"

    def __init__(self, message: str = "", *, status: int | None = 410):
        super().__init__(message, status=status)


class NotSupported(ProviderError):
    """The provider does not offer this operation; the caller records ``not_supported``."""

    code = "not_supported"

    def __init__(self, message: str = ""):
        super().__init__(message)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds; None when absent or
    unreadable (``inf``, ``nan``); at most :data:`RETRY_AFTER_MAX_S`."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), RETRY_AFTER_MAX_S) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), RETRY_AFTER_MAX_S)
