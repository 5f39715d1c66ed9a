"""The ChronaPilot error tree. Each error has a stable ``code``; no HTTP here.

::

    ChronaPilotError
     ├── ConfigurationError        bad settings; the process cannot start
     ├── StartupError              a dependency stayed unreachable past the retry budget
     ├── NotFound
     ├── Conflict
     │    └── VersionConflict      an optimistic update lost the race
     ├── RateLimited               (retry_after)
     ├── InvalidRequest            (param)
     ├── StoreError                MongoDB failed in a way callers may retry
     ├── BusError                  Kafka failed in a way callers may retry
     ├── CryptoError               a ciphertext could not be opened (unknown key, tampering)
     └── ProviderError             (retryable, retry_after, reauth_required)

The API maps these to its error envelope in one place.
"""

from __future__ import annotations


class ChronaPilotError(Exception):
    code = "internal_error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        if code is not None:
            self.code = code


class ConfigurationError(ChronaPilotError):
    code = "configuration_error"


class StartupError(ChronaPilotError):
    code = "startup_error"


class NotFound(ChronaPilotError):
    code = "resource_missing"


class Conflict(ChronaPilotError):
    code = "conflict"


class VersionConflict(Conflict):
    code = "version_conflict"


class RateLimited(ChronaPilotError):
    code = "rate_limited"

    def __init__(self, message: str = "", *, retry_after: float = 1.0, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class InvalidRequest(ChronaPilotError):
    code = "invalid_request"

    def __init__(self, message: str = "", *, param: str | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.param = param


class StoreError(ChronaPilotError):
    code = "store_unavailable"


class BusError(ChronaPilotError):
    code = "bus_unavailable"


class CryptoError(ChronaPilotError):
    code = "crypto_error"


class ProviderError(ChronaPilotError):
    """A provider answered with an error or could not be reached."""

    code = "provider_error"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        reauth_required: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.reauth_required = reauth_required
