"""What a refresh leaves behind: stored tokens, connection telemetry, events and metrics.

:class:`RefreshRecords` writes the outcome of one refresh attempt for
:class:`~chronapilot.common.tokens.TokenService`, each in one MongoDB transaction:

- success (:meth:`RefreshRecords.stored`): the new access token and the refresh token to keep
  (Microsoft's rotated one), compare-and-set on the credentials' ``version``; the connection's
  ``token_refresh`` telemetry (``last_at``, ``failures_count`` reset to 0, ``next_at`` = expiry
  minus the margin, ``last_error`` cleared); ``token.refreshed``; a connection that was in
  ``error`` / ``token_refresh_failed`` comes back ``active``;
- transient failure (:meth:`RefreshRecords.transient`): ``failures_count`` + 1, ``last_error``,
  ``next_at`` = the jittered backoff (also ``refresh_retry_at`` on the credentials, which the
  refresher's tick respects); at the threshold, ``error`` / ``token_refresh_failed``;
  ``token.refresh_failed`` (``permanent: false``);
- permanent failure (:meth:`RefreshRecords.permanent`): the credentials are marked unusable
  (``reauth_required_version``, access token and expiry cleared: nothing to refresh until a
  re-link bumps ``version``); the connection goes to ``error`` / ``reauth_required``;
  ``connection.status_changed`` and ``token.refresh_failed`` (``permanent: true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter

from chronapilot.common.backoff import Backoff
from chronapilot.common.bus.catalogue import (
    TokenRefreshed,
    TokenRefreshFailed,
)
from chronapilot.common.bus.outbox import EventSink as EventSink
from chronapilot.common.clock import Clock
from chronapilot.common.connections import Connections
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.errors import ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import CalendarProvider, TokenSet
from chronapilot.common.store.client import Document, Session, Store
from chronapilot.common.store.credentials import Credentials

log = get_logger(__name__)

REAUTH_REQUIRED = "reauth_required"
REFRESH_FAILING = "token_refresh_failed"

REFRESHES = Counter(
    "chronapilot_token_refreshes_total",
    "Access tokens refreshed and stored, by provider and trigger (due, on_demand).",
    ["provider", "trigger"],
)
REFRESH_FAILURES = Counter(
    "chronapilot_token_refresh_failures_total",
    "Failed refreshes by provider and reason (the error code), and whether permanent.",
    ["provider", "reason", "permanent"],
)


def refresh_due_at(expires_at: datetime | None, margin: timedelta) -> datetime | None:
    """When the token refresher refreshes a token that expires at ``expires_at``: the
    connection's ``token_refresh.next_at``. None for a credential that never expires (an
    iCloud app-specific password): nothing is ever refreshed."""
    return None if expires_at is None else expires_at - margin


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh did for one connection.

    ``result``: ``refreshed``; ``busy`` (another process holds the refresh lease); ``not_due``
    (someone refreshed it already, or it waits for its backoff); ``skipped`` (disconnected,
    gone, or nothing to refresh); ``failed`` (transient, retried later); ``reauth_required``.
    """

    connection_id: str
    result: str
    expires_at: datetime | None = None
    reason: str | None = None


class RefreshRecords:
    """Writes refresh outcomes (see the module docstring); ``owner`` is the lease holder's id."""

    def __init__(
        self,
        *,
        db: Store,
        cipher: TokenCipher,
        clock: Clock,
        emit: EventSink,
        refresh_margin: timedelta,
        failure_threshold: int,
        backoff: Backoff,
        owner: str,
    ) -> None:
        self._store = db
        self._credentials = Credentials(db)
        self._connections = Connections(db, emit, clock)
        self._cipher = cipher
        self._clock = clock
        self._events = emit
        self.refresh_margin = refresh_margin
        self._failure_threshold = failure_threshold
        self._backoff = backoff
        self.owner = owner

    def _seal(self, connection_id: str, value: str | None) -> str | None:
        return None if value is None else self._cipher.encrypt(value, associated_data=connection_id)

    async def stored(
        self,
        doc: Document,
        provider: CalendarProvider,
        tokens: TokenSet,
        old_refresh_token: str,
        connection: Document,
        trigger: str,
    ) -> RefreshOutcome:
        connection_id = doc["_id"]
        now = self._clock.now()
        rotated = tokens.refresh_token is not None and tokens.refresh_token != old_refresh_token
        keep = tokens.refresh_token or old_refresh_token
        next_at = refresh_due_at(tokens.expires_at, self.refresh_margin)

        async def write(session: Session) -> bool:
            if not await self._credentials.store_refreshed(
                connection_id,
                version=doc.get("version", 0),
                access_token=self._seal(connection_id, tokens.access_token),
                refresh_token=self._seal(connection_id, keep),
                access_expires_at=tokens.expires_at,
                scopes=tokens.scopes,
                now=now,
                session=session,
            ):
                return False  # re-linked meanwhile: the new grant's tokens win
            await self._connections.token_refreshed(session, connection_id, next_at)
            await self._events.emit(
                session,
                TokenRefreshed(expires_at=tokens.expires_at, rotated=rotated),
                connection_id=connection_id,
            )
            return True

        if not await self._store.in_transaction(write):
            log.warning("token.refresh_superseded", connection_id=connection_id, provider=provider.name)
            return RefreshOutcome(connection_id, "not_due", reason="superseded")
        REFRESHES.labels(provider.name, trigger).inc()
        log.info(
            "token.refreshed",
            connection_id=connection_id,
            provider=provider.name,
            rotated=rotated,
            trigger=trigger,
            expires_at=tokens.expires_at.isoformat() if tokens.expires_at else None,
        )
        return RefreshOutcome(connection_id, "refreshed", expires_at=tokens.expires_at)

    async def transient(
        self, doc: Document, provider: CalendarProvider, error: ProviderError, connection: Document
    ) -> None:
        connection_id = doc["_id"]
        now = self._clock.now()
        failures = int((connection.get("token_refresh") or {}).get("failures_count", 0)) + 1
        delay = self._backoff.delay(failures - 1, retry_after=error.retry_after)
        retry_at = now + timedelta(seconds=delay)
        reason = error.code
        failing = failures >= self._failure_threshold and connection.get("status") == "active"

        async def write(session: Session) -> None:
            await self._credentials.back_off_refresh(
                connection_id, owner=self.owner, retry_at=retry_at, session=session
            )
            await self._connections.token_refresh_failed(
                session,
                connection_id,
                failures=failures,
                reason=reason,
                retry_at=retry_at,
                failing_message=_message(error) if failing else None,
            )
            await self._events.emit(
                session,
                TokenRefreshFailed(reason=reason, permanent=False, failures_count=failures),
                connection_id=connection_id,
            )

        await self._store.in_transaction(write)
        REFRESH_FAILURES.labels(provider.name, reason, "false").inc()
        log.warning(
            "token.refresh_failed",
            connection_id=connection_id,
            provider=provider.name,
            reason=reason,
            failures_count=failures,
            retry_in_s=round(delay, 1),
        )

    async def permanent(self, doc: Document, provider: CalendarProvider, error: ProviderError) -> None:
        connection_id = doc["_id"]
        now = self._clock.now()
        reason = getattr(error, "provider_code", None) or error.code
        message = _message(error)

        async def write(session: Session) -> None:
            if not await self._credentials.mark_reauth_required(
                connection_id, version=doc.get("version", 0), now=now, session=session
            ):
                return  # re-linked or already recorded meanwhile
            failures = await self._connections.token_reauth_required(
                session, connection_id, reason=reason, message=message
            )
            if failures is None:
                return  # disconnected meanwhile
            await self._events.emit(
                session,
                TokenRefreshFailed(reason=reason, permanent=True, failures_count=failures),
                connection_id=connection_id,
            )

        await self._store.in_transaction(write)
        REFRESH_FAILURES.labels(provider.name, reason, "true").inc()
        log.warning(
            "token.reauth_required", connection_id=connection_id, provider=provider.name, reason=reason
        )


def _message(error: ProviderError) -> str:
    """A user-facing reason: the error's code, never the provider's text (it may echo input)."""
    if error.reauth_required:
        return "The provider no longer accepts this connection's authorization; re-link the account."
    return f"Refreshing the access token keeps failing ({error.code})."
