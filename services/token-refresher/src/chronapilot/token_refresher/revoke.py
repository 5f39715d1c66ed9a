"""Disconnect: revoke the grant at the provider, delete the stored credentials, record it.

This is the last step of the disconnect saga: the webhook subscriptions must be stopped at
the provider first, and stopping them needs the credentials. So the refresher acts on
``connection.subscriptions_released`` (the gateway is done with them), or at once on
``connection.disconnected`` when the connection has no subscription records at all (iCloud,
or no gateway ever covered it). A Google grant is shared by every connection to the same
Google account (one OAuth client): it is revoked only when no other connection that is not
disconnected holds that account (``skipped_shared_grant`` otherwise); the credentials are
deleted either way.

The refresher revokes the grant where the provider can
(``capabilities.revocation``: Google's revocation endpoint, with the refresh token, which ends
the whole grant), retrying a provider that is down or throttling with a jittered backoff. Then,
whatever the provider said, one transaction deletes the credentials and sets the connection's
``revoked_at`` and ``revocation`` (``revoked``, ``not_supported`` — Microsoft and iCloud have
no client revocation — or ``failed`` with the error code). Mirrored calendars and events are
left alone.

The handler is idempotent (a redelivered event finds no credentials and keeps the first
record), and a stale event does nothing: if the connection was re-linked since, it is no
longer ``disconnected`` and its new credentials stay.
"""

from __future__ import annotations

from typing import Any

from chronapilot.common.backoff import Backoff, retry
from chronapilot.common.bus import Envelope, Handler, parse
from chronapilot.common.bus.catalogue import ConnectionDisconnected, ConnectionSubscriptionsReleased
from chronapilot.common.errors import CryptoError, ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import CalendarProvider
from chronapilot.common.runtime import Runtime
from chronapilot.common.store.client import Document, Session
from chronapilot.token_refresher.telemetry import REVOCATIONS

log = get_logger(__name__)

REVOKED = "revoked"
NOT_SUPPORTED = "not_supported"
FAILED = "failed"
NO_CREDENTIALS = "no_credentials"
SKIPPED_SHARED_GRANT = "skipped_shared_grant"


def disconnect_handler(runtime: Runtime) -> Handler:
    """The consumer handler: tear down the credentials of each disconnected connection."""

    async def handle(envelope: Envelope) -> None:
        event = parse(envelope)
        if isinstance(event, ConnectionSubscriptionsReleased) or (
            isinstance(event, ConnectionDisconnected)
            and not await _has_subscriptions(runtime, envelope.connection_id)
        ):
            await revoke_credentials(runtime, envelope.connection_id)

    return handle


async def revoke_credentials(runtime: Runtime, connection_id: str) -> str | None:
    """Revoke, delete and record for one disconnected connection; the outcome, or None when
    there was nothing to do (re-linked since, or already torn down)."""
    connection = await runtime.connections.get(connection_id)
    if connection is None or connection.get("status") != "disconnected":
        return None
    credentials = await runtime.repos.credentials.get(connection_id)
    if credentials is None:
        if connection.get("revoked_at") is None:
            await _record(runtime, connection_id, None, {"outcome": NO_CREDENTIALS})
        return None
    provider = runtime.providers.get(credentials["provider"])
    if (
        provider is not None
        and provider.capabilities.revocation
        and await runtime.connections.others_holding_account(connection)
    ):
        revocation: dict[str, Any] = {"outcome": SKIPPED_SHARED_GRANT}  # the other connection still uses it
    else:
        revocation = await _revoke_at_provider(runtime, provider, credentials)
    if await _record(runtime, connection_id, credentials, revocation):
        REVOCATIONS.labels(credentials["provider"], revocation["outcome"]).inc()
        log.info(
            "token.revoked",
            connection_id=connection_id,
            provider=credentials["provider"],
            outcome=revocation["outcome"],
            error=revocation.get("error"),
        )
    return str(revocation["outcome"])


async def _revoke_at_provider(
    runtime: Runtime, provider: CalendarProvider | None, credentials: Document
) -> dict[str, Any]:
    if provider is None or not provider.capabilities.revocation:
        return {"outcome": NOT_SUPPORTED}
    try:
        token = _open(runtime, credentials, "refresh_token") or _open(runtime, credentials, "access_token")
    except CryptoError:
        return {"outcome": FAILED, "error": CryptoError.code}
    if token is None:
        return {"outcome": FAILED, "error": "no token stored"}
    settings = runtime.settings.tokens
    calls = 0

    async def revoke() -> None:
        nonlocal calls
        calls += 1
        await provider.revoke(token)

    def retrying(exc: Exception, attempt: int, delay: float) -> None:
        code = exc.code if isinstance(exc, ProviderError) else type(exc).__name__
        log.warning("token.revoke_retry", provider=provider.name, reason=code, retry_in_s=round(delay, 2))

    try:
        await retry(
            revoke,
            backoff=Backoff(base_s=settings.revoke_backoff_s, cap_s=30.0, attempts=settings.revoke_attempts),
            should_retry=lambda exc: (
                isinstance(exc, ProviderError) and exc.retryable and exc.code != "not_supported"
            ),
            retry_after=lambda exc: exc.retry_after if isinstance(exc, ProviderError) else None,
            on_retry=retrying,
        )
    except ProviderError as exc:
        if exc.code == "not_supported":
            return {"outcome": NOT_SUPPORTED}
        return {"outcome": FAILED, "error": exc.code, "attempts": calls}
    return {"outcome": REVOKED}


async def _has_subscriptions(runtime: Runtime, connection_id: str) -> bool:
    """Whether the gateway keeps subscription records for the connection (it then says when
    they are released)."""
    return await runtime.repos.webhook_subscriptions.exist_for(connection_id)


def _open(runtime: Runtime, credentials: Document, field: str) -> str | None:
    sealed = credentials.get(field)
    return None if sealed is None else runtime.cipher.decrypt(sealed, associated_data=credentials["_id"])


async def _record(
    runtime: Runtime, connection_id: str, credentials: Document | None, revocation: dict[str, Any]
) -> bool:
    """Delete the credentials and record the teardown, if the connection is still disconnected."""

    async def write(session: Session) -> bool:
        if not await runtime.connections.record_revocation(session, connection_id, revocation):
            return False  # re-linked meanwhile: its new credentials stay
        if credentials is not None:
            await runtime.repos.credentials.delete(connection_id, session=session)
        return True

    return await runtime.store.in_transaction(write)
