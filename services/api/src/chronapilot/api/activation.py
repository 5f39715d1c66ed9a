"""Creating or re-activating a connection once the provider said yes.

One MongoDB transaction writes the connection, its sealed credentials, its calendars and
its events (``connection.activated``, the initial ``sync.requested``, and
``mirror.calendars_changed`` when the calendars listed at consent changed the mirror). The same user
re-linking the same provider account gets the same ``con_`` id back, active, with the new
tokens: a unique index on (application, user, provider, provider account) makes a
duplicate impossible even when two callbacks race.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chronapilot.common.bus.catalogue import (
    MirrorCalendarsChanged,
    SyncKind,
    SyncReason,
    SyncRequested,
)
from chronapilot.common.errors import Conflict
from chronapilot.common.ids import new_id
from chronapilot.common.models.credentials import credential_fields
from chronapilot.common.providers.base import Account, CalendarInfo, Credential, OAuthGrant
from chronapilot.common.runtime import Runtime
from chronapilot.common.store import Document, Session
from chronapilot.common.token_outcomes import refresh_due_at


@dataclass(frozen=True)
class Grant:
    """What consent produced: who the account is, its calendars, and the credential."""

    provider: str
    account: Account
    calendars: list[CalendarInfo]
    credential: Credential
    #: The ChronaPilot scopes asked for, recorded with a credential that names none (an app
    #: password opens the whole account); an OAuth grant records the scopes it carries.
    scopes: tuple[str, ...] = ()


async def activate(runtime: Runtime, *, application_id: str, user_id: str, grant: Grant) -> Document:
    """Create or re-activate the connection for ``grant``; return the connection document."""
    for attempt in range(2):
        try:
            return await runtime.store.in_transaction(
                lambda session: _activate(runtime, session, application_id, user_id, grant)
            )
        except Conflict:
            if attempt == 1:
                raise  # a concurrent activation inserted it; the second pass re-activates it
    raise AssertionError("unreachable")


async def _activate(
    runtime: Runtime, session: Session, application_id: str, user_id: str, grant: Grant
) -> Document:
    now = runtime.clock.now()
    key = {
        "application_id": application_id,
        "user_id": user_id,
        "provider": grant.provider,
        "provider_account_id": grant.account.id,
    }
    connection_id = await runtime.connections.id_for_account(key, session=session) or new_id("con")
    listing = await runtime.repos.calendars.upsert_listed(
        session=session,
        connection_id=connection_id,
        application_id=application_id,
        calendars=grant.calendars,
        now=now,
    )
    connection, _ = await runtime.connections.activate(
        session,
        key=key,
        email=grant.account.email,
        calendar_ids=listing.ids,
        connection_id=connection_id,
        token_next_at=_refresh_due_at(runtime, grant.credential),
    )
    if listing.changed:  # told after the connection it belongs to
        changed = MirrorCalendarsChanged(application_id=application_id, **listing.changes)
        await runtime.emit(session, changed, connection_id=connection_id)
    await _store_credentials(runtime, session, connection_id, grant, now)
    await runtime.emit(
        session, SyncRequested(mode=SyncKind.FULL, reason=SyncReason.INITIAL), connection_id=connection_id
    )
    return connection


def _refresh_due_at(runtime: Runtime, credential: Credential) -> datetime | None:
    """When the token refresher will refresh the grant's first access token (None for an app
    password: it does not expire)."""
    expires_at = credential.tokens.expires_at if isinstance(credential, OAuthGrant) else None
    return refresh_due_at(expires_at, timedelta(seconds=runtime.settings.tokens.refresh_margin_s))


async def _store_credentials(
    runtime: Runtime, session: Session, connection_id: str, grant: Grant, now: datetime
) -> None:
    def seal(value: str) -> str:
        return runtime.cipher.encrypt(value, associated_data=connection_id)

    fields, stale = credential_fields(grant.credential, seal)
    fields.setdefault("scopes", list(grant.scopes))
    await runtime.repos.credentials.save_grant(
        session, connection_id, provider=grant.provider, fields=fields, stale=stale, now=now
    )
