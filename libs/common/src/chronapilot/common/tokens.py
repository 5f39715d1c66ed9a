"""The one way any service gets a provider token: :class:`TokenService`.

Every service asks :meth:`TokenService.access_token` (or hands a provider client
:meth:`TokenService.token_source`) and gets a valid access token, refreshed on demand when
less than ``min_validity_s`` is left. The token refresher runs :meth:`TokenService.refresh`
ahead of expiry for the tokens due, so on-demand refreshes are the exception.

Refresh policy lives here and nowhere else:

- **One spender per refresh token.** Before calling the provider a process takes a short
  refresh lease on the credentials document (``refreshing_until`` / ``refreshing_by``, set by
  an atomic ``find_one_and_update`` on the ``version`` read). A process that finds the lease
  taken waits for the holder and uses the token it stored. Microsoft rotates refresh tokens
  (the emulator invalidates the old one at once), so two spenders would lose the grant.
- **Stored atomically.** The new access token and the rotated refresh token are written in
  one update guarded by ``version`` (compare-and-set), in the same transaction as the
  connection's ``token_refresh`` telemetry and the ``token.refreshed`` event.
- **Permanent failures** (``InvalidGrant``, ``InvalidCredentials``: the provider says the grant
  or password is gone) move the connection to ``error`` / ``reauth_required`` with a
  ``connection.status_changed`` and a ``token.refresh_failed`` (``permanent``) event, in one
  transaction, and raise :class:`ReauthRequired`. The credentials stay (a disconnect still
  revokes them) but are marked unusable until the account is re-linked (re-linking writes new
  credentials and bumps ``version``, which clears the mark).
- **Transient failures** (5xx, timeouts, 429, anything not saying "the grant is gone") count
  in ``token_refresh.failures_count`` and push the next background attempt out by a jittered
  backoff (``refresh_retry_at``); at ``failure_threshold`` consecutive failures the connection
  goes to ``error`` / ``token_refresh_failed`` and comes back ``active`` on the next success.
- **Password providers** (iCloud, ``capabilities.oauth`` False) have nothing to refresh: the
  stored credential is an :class:`~chronapilot.common.providers.base.AppPassword` and the
  "token" is its :meth:`~chronapilot.common.providers.base.AppPassword.token`. A forced refresh
  (the client saw a 401) checks the stored password with the provider's
  ``password_sign_in``; a refusal is a permanent failure as above.

What each outcome writes (tokens, telemetry, events, metrics) is in
:mod:`chronapilot.common.token_outcomes`. Tokens and passwords are never logged, returned in
errors, or put in events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from chronapilot.common.backoff import Backoff
from chronapilot.common.clock import Clock
from chronapilot.common.connections import Connections
from chronapilot.common.crypto import TokenCipher
from chronapilot.common.errors import ProviderError
from chronapilot.common.ids import new_id
from chronapilot.common.logging import get_logger
from chronapilot.common.models.credentials import read_credential
from chronapilot.common.providers.base import (
    AppPassword,
    CalendarProvider,
    TokenSet,
    TokenSource,
)
from chronapilot.common.store.client import Document, Store
from chronapilot.common.store.credentials import Credentials
from chronapilot.common.token_outcomes import (
    REAUTH_REQUIRED,
    REFRESH_FAILING,
    REFRESH_FAILURES,
    REFRESHES,
    EventSink,
    RefreshOutcome,
    RefreshRecords,
)

__all__ = [
    "REAUTH_REQUIRED",
    "REFRESHES",
    "REFRESH_FAILING",
    "REFRESH_FAILURES",
    "CredentialsMissing",
    "EventSink",
    "ReauthRequired",
    "RefreshOutcome",
    "TokenService",
]

log = get_logger(__name__)


class ReauthRequired(ProviderError):
    """The provider no longer accepts this connection's grant or password: re-link it."""

    code = REAUTH_REQUIRED

    def __init__(self, message: str = "the connection must be re-authorized") -> None:
        super().__init__(message, reauth_required=True)


class CredentialsMissing(ProviderError):
    """The connection has no stored credentials (never linked, or disconnected and revoked)."""

    code = "credentials_missing"


@dataclass(frozen=True)
class _Token:
    value: str
    version: int


class TokenService:
    """Valid tokens for any connection, refreshed under a lease and a compare-and-set."""

    def __init__(
        self,
        *,
        db: Store,
        cipher: TokenCipher,
        providers: Mapping[str, CalendarProvider],
        clock: Clock,
        emit: EventSink,
        refresh_margin_s: float = 600,
        min_validity_s: float = 60,
        lease_s: float = 45,
        failure_threshold: int = 5,
        backoff: Backoff | None = None,
    ) -> None:
        self._credentials = Credentials(db)
        self._connections = Connections(db, emit, clock)
        self._cipher = cipher
        self._providers = providers
        self._clock = clock
        self.refresh_margin = timedelta(seconds=refresh_margin_s)
        self._min_validity = timedelta(seconds=min_validity_s)
        self._lease = timedelta(seconds=lease_s)
        self.owner = new_id("req")
        self._records = RefreshRecords(
            db=db,
            cipher=cipher,
            clock=clock,
            emit=emit,
            refresh_margin=self.refresh_margin,
            failure_threshold=failure_threshold,
            backoff=backoff or Backoff(base_s=30.0, cap_s=900.0),
            owner=self.owner,
        )

    @property
    def credentials(self) -> Credentials:
        """The ``credentials`` repository (the refresher queries it for tokens due)."""
        return self._credentials

    @property
    def providers(self) -> Mapping[str, CalendarProvider]:
        """The provider clients this service refreshes with, by name."""
        return self._providers

    # -- the API services use ------------------------------------------------------------------

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        """A valid access token (iCloud: ``"<apple id>:<app password>"``, :meth:`AppPassword.token`).

        Refreshes first when less than ``min_validity_s`` is left, or when ``force_refresh``
        (the provider answered 401 to the stored token). Raises :class:`ReauthRequired`,
        :class:`CredentialsMissing`, or the provider's retryable error when a needed refresh
        failed transiently.
        """
        return (await self._token(connection_id, force=force_refresh, seen_version=None)).value

    def token_source(self, connection_id: str) -> TokenSource:
        """``async (force_refresh) -> str`` for a provider client. A forced call refreshes only
        if nobody stored a newer token since this source last handed one out."""
        seen: int | None = None

        async def source(force_refresh: bool) -> str:
            nonlocal seen
            token = await self._token(connection_id, force=force_refresh, seen_version=seen)
            seen = token.version
            return token.value

        return source

    async def refresh(self, connection_id: str, *, due_before: datetime | None = None) -> RefreshOutcome:
        """Refresh now, unless another process is at it (``busy``).

        ``due_before`` (the refresher's use): refresh only if the access token expires before
        it and no backoff is pending; else ``not_due``. Failures are recorded, not raised.
        """
        doc = await self._read(connection_id, missing_ok=True)
        if doc is None:
            return RefreshOutcome(connection_id, "skipped", reason="no credentials")
        provider = self._provider(doc)
        if not provider.capabilities.oauth or self._marked_reauth(doc):
            return RefreshOutcome(connection_id, "skipped", reason="nothing to refresh")
        return await self._refresh(doc, provider, due_before=due_before, trigger="due")

    # -- reading -------------------------------------------------------------------------------

    async def _read(self, connection_id: str, *, missing_ok: bool = False) -> Document | None:
        doc = await self._credentials.get(connection_id)
        if doc is None and not missing_ok:
            raise CredentialsMissing(f"no credentials for connection {connection_id}")
        return doc

    def _provider(self, doc: Document) -> CalendarProvider:
        provider = self._providers.get(doc["provider"])
        if provider is None:
            raise ProviderError(f"provider {doc['provider']!r} is not configured in this process")
        return provider

    def _open(self, doc: Document, field: str) -> str | None:
        sealed = doc.get(field)
        return None if sealed is None else self._cipher.decrypt(sealed, associated_data=doc["_id"])

    @staticmethod
    def _marked_reauth(doc: Document) -> bool:
        return "reauth_required_version" in doc and doc["reauth_required_version"] == doc.get("version")

    def _valid_for(self, doc: Document, at_least: timedelta) -> bool:
        expires_at = doc.get("access_expires_at")
        if doc.get("access_token") is None:
            return False
        return expires_at is None or expires_at - self._clock.now() > at_least

    # -- on demand -----------------------------------------------------------------------------

    async def _token(self, connection_id: str, *, force: bool, seen_version: int | None) -> _Token:
        doc = await self._read(connection_id)
        assert doc is not None
        provider = self._provider(doc)
        if self._marked_reauth(doc):
            raise ReauthRequired()
        if not provider.capabilities.oauth:
            return await self._password(doc, provider, force=force)
        newer = seen_version is not None and doc.get("version", 0) != seen_version
        if (not force or newer) and self._valid_for(doc, self._min_validity):
            return self._current(doc)  # forced, but someone stored a newer token meanwhile
        for _ in range(3):
            outcome = await self._refresh(doc, provider, due_before=None, trigger="on_demand")
            doc = await self._read(connection_id)
            assert doc is not None
            if self._marked_reauth(doc):
                raise ReauthRequired()
            if outcome.result in ("refreshed", "busy", "not_due") and self._valid_for(doc, timedelta(0)):
                return self._current(doc)
            if outcome.result == "failed":
                if not force and self._valid_for(doc, timedelta(0)):
                    return self._current(doc)  # still usable; the refresher retries later
                raise ProviderError(
                    f"token refresh failed ({outcome.reason})", code=outcome.reason, retryable=True
                )
            if outcome.result == "skipped":
                raise CredentialsMissing(f"connection {connection_id}: {outcome.reason}")
        raise ProviderError("token refresh did not settle", retryable=True)

    def _current(self, doc: Document) -> _Token:
        value = self._open(doc, "access_token")
        assert value is not None
        return _Token(value, int(doc.get("version", 0)))

    async def _password(self, doc: Document, provider: CalendarProvider, *, force: bool) -> _Token:
        credential = read_credential(
            doc, lambda sealed: self._cipher.decrypt(sealed, associated_data=doc["_id"])
        )
        if not isinstance(credential, AppPassword):
            raise CredentialsMissing(f"connection {doc['_id']} has no stored password")
        sign_in = provider.password_sign_in
        if force and sign_in is not None:
            try:
                await sign_in.verify(credential)
            except ProviderError as exc:
                if exc.reauth_required:
                    await self._records.permanent(doc, provider, exc)
                    raise ReauthRequired() from None
                log.warning("token.verify_failed", connection_id=doc["_id"], reason=exc.code)
        return _Token(credential.token(), int(doc.get("version", 0)))

    # -- refreshing ----------------------------------------------------------------------------

    async def lease_due(
        self, candidates: list[Document], *, due_before: datetime, now: datetime | None = None
    ) -> list[Document]:
        """Take the refresh lease of each candidate still due (``access_expires_at`` before
        ``due_before``, no backoff pending, nobody else at it); return the ones taken.

        The refresher leases a whole batch first, so other refresher processes querying at the
        same time skip these and take the next ones.
        """
        leased = []
        for candidate in candidates:
            claimed = await self._claim(candidate, due_before, now)
            if claimed is not None:
                leased.append(claimed)
        return leased

    async def refresh_leased(self, doc: Document) -> RefreshOutcome:
        """Refresh a document taken by :meth:`lease_due` (its lease is renewed first: a batch
        may wait behind slow provider calls)."""
        renewed = await self._renew(doc)
        if renewed is None:
            return RefreshOutcome(doc["_id"], "busy", reason="lease lost")
        provider = self._provider(renewed)
        if not provider.capabilities.oauth or self._marked_reauth(renewed):
            await self._release(doc["_id"])
            return RefreshOutcome(doc["_id"], "skipped", reason="nothing to refresh")
        return await self._refresh_claimed(renewed, provider, trigger="due")

    async def _refresh(
        self, doc: Document, provider: CalendarProvider, *, due_before: datetime | None, trigger: str
    ) -> RefreshOutcome:
        claimed = await self._claim(doc, due_before)
        if claimed is None:
            if due_before is not None:
                return RefreshOutcome(doc["_id"], "not_due")
            return await self._wait_for_holder(doc)
        return await self._refresh_claimed(claimed, provider, trigger=trigger)

    async def _refresh_claimed(
        self, claimed: Document, provider: CalendarProvider, *, trigger: str
    ) -> RefreshOutcome:
        connection_id = claimed["_id"]
        connection: Document | None = None
        try:
            connection = await self._connections.get(connection_id)
            if connection is None or connection.get("status") == "disconnected":
                await self._release(connection_id)
                return RefreshOutcome(connection_id, "skipped", reason="disconnected")
            refresh_token = self._open(claimed, "refresh_token")
            if refresh_token is None:
                error: ProviderError = ReauthRequired("no refresh token was issued for this connection")
                await self._records.permanent(claimed, provider, error)
                return RefreshOutcome(connection_id, "reauth_required", reason=error.code)
            tokens = await provider.refresh(refresh_token, scopes=self._scopes(claimed, provider))
        except ProviderError as exc:
            return await self._failed(claimed, provider, exc, connection)
        except BaseException:
            await asyncio.shield(self._release(connection_id))
            raise
        return await self._records.stored(claimed, provider, tokens, refresh_token, connection, trigger)

    async def _renew(self, doc: Document) -> Document | None:
        return await self._credentials.renew_refresh(
            doc["_id"], version=doc.get("version", 0), owner=self.owner, until=self._clock.now() + self._lease
        )

    async def _claim(
        self, doc: Document, due_before: datetime | None, now: datetime | None = None
    ) -> Document | None:
        now = now or self._clock.now()
        return await self._credentials.claim_refresh(
            doc["_id"],
            version=doc.get("version", 0),
            owner=self.owner,
            now=now,
            until=now + self._lease,
            due_before=due_before,
        )

    async def _release(self, connection_id: str) -> None:
        await self._credentials.release_refresh(connection_id, owner=self.owner)

    async def _wait_for_holder(self, doc: Document) -> RefreshOutcome:
        """Another process holds the lease: wait until it stored a token or let go."""
        connection_id, version = doc["_id"], doc.get("version", 0)
        deadline = asyncio.get_running_loop().time() + self._lease.total_seconds() + 1
        delay = 0.05
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            current = await self._read(connection_id, missing_ok=True)
            if current is None:
                return RefreshOutcome(connection_id, "skipped", reason="no credentials")
            if current.get("version", 0) != version:
                return RefreshOutcome(connection_id, "busy", expires_at=current.get("access_expires_at"))
            lease = current.get("refreshing_until")
            if lease is None or lease <= self._clock.now():
                return RefreshOutcome(connection_id, "not_due")  # the holder gave up; caller retries
        return RefreshOutcome(connection_id, "busy")

    @staticmethod
    def _scopes(doc: Document, provider: CalendarProvider) -> tuple[str, ...] | None:
        granted = provider.granted_scopes(TokenSet("", None, None, tuple(doc.get("scopes") or ())))
        return granted or None

    async def _failed(
        self, doc: Document, provider: CalendarProvider, error: ProviderError, connection: Document | None
    ) -> RefreshOutcome:
        connection_id = doc["_id"]
        if error.reauth_required:
            current = await self._read(connection_id, missing_ok=True)
            if current is not None and current.get("version") != doc.get("version"):
                # Someone stored a newer grant meanwhile (a re-link): the old token's refusal
                # says nothing about it.
                await self._release(connection_id)
                log.warning(
                    "token.refresh_superseded",
                    connection_id=connection_id,
                    provider=provider.name,
                    reason=error.code,
                )
                return RefreshOutcome(connection_id, "not_due", reason="superseded")
            await self._records.permanent(doc, provider, error)
            return RefreshOutcome(connection_id, "reauth_required", reason=error.code)
        await self._records.transient(doc, provider, error, connection or {})
        return RefreshOutcome(connection_id, "failed", reason=error.code)
