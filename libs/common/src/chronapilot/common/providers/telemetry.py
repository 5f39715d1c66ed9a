"""What every provider HTTP request is counted as: its operation and its outcome.

``chronapilot_provider_requests_total{provider,operation,outcome}`` and
``chronapilot_provider_request_seconds{provider,operation}`` are observed where all provider HTTP
goes through (:class:`~chronapilot.common.providers.http.ProviderHttp`). Their labels come from the
two enums here: the provider's name and the caller's :class:`Operation` are chosen in code, the
:class:`Outcome` is read from the status (or the exception), never from the provider's text.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chronapilot.common.errors import ProviderError
from chronapilot.common.metrics import PROVIDER_REQUEST_SECONDS, PROVIDER_REQUESTS
from chronapilot.common.providers.errors import Throttled


class Operation(enum.StrEnum):
    """What a provider request was for (the ``operation`` label)."""

    TOKEN = "token"  # OAuth token endpoint: code exchange, refresh
    REVOKE = "revoke"  # grant revocation
    ACCOUNT = "account"  # who the account is (userinfo, /me, CalDAV principal)
    LIST_CALENDARS = "list_calendars"
    SYNC_EVENTS = "sync_events"  # event pages, deltas, sync-collection, multiget
    WRITE_EVENT = "write_event"  # write-back: create, update, delete (and their reads)
    SUBSCRIPTION = "subscription"  # webhook subscriptions: create, renew, stop


class Outcome(enum.StrEnum):
    """How a provider request ended (the ``outcome`` label)."""

    OK = "ok"
    THROTTLED = "throttled"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"


def outcome_of_status(status: int, error: ProviderError | None = None) -> Outcome:
    """The outcome of an answer with ``status``; ``error`` is the provider's translation of it
    (how a provider says it throttles: Google's 403 ``rateLimitExceeded``, a 503 with
    ``Retry-After``)."""
    if status == 429 or isinstance(error, Throttled):
        return Outcome.THROTTLED
    if status < 400:
        return Outcome.OK
    if status == 401:
        return Outcome.UNAUTHORIZED
    if status in (404, 410):
        return Outcome.NOT_FOUND
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


def outcome_of_exception(exc: BaseException) -> Outcome:
    """The outcome of a request that got no answer: ``exc`` is what the HTTP client raised."""
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return Outcome.TIMEOUT
    if isinstance(exc, ProviderError) and exc.status is not None:
        return outcome_of_status(exc.status, exc)
    if isinstance(exc, Throttled):
        return Outcome.THROTTLED
    return Outcome.NETWORK_ERROR


@dataclass
class Call:
    """One request being timed; :meth:`answered` records its status."""

    outcome: Outcome | None = None

    def answered(self, status: int, error: ProviderError | None = None) -> None:
        self.outcome = outcome_of_status(status, error)


@contextmanager
def observe_call(provider: str, operation: Operation) -> Iterator[Call]:
    """Time one request and count its outcome: the status given to ``Call.answered``, or the
    exception that ended the block. A cancelled request (the caller gave up) is not counted."""
    started = time.perf_counter()
    call = Call()
    try:
        yield call
    except Exception as exc:
        call.outcome = call.outcome or outcome_of_exception(exc)
        raise
    finally:
        if call.outcome is not None:
            PROVIDER_REQUESTS.labels(provider, operation.value, call.outcome.value).inc()
            PROVIDER_REQUEST_SECONDS.labels(provider, operation.value).observe(time.perf_counter() - started)
