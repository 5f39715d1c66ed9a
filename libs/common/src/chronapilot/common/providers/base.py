"""The one provider interface: what ChronaPilot asks of Google, Microsoft and iCloud.

Glossary:

- **provider**: an implementation of :class:`CalendarProvider`, built by
  :func:`chronapilot.common.providers.registry.build_providers`; services look it up by name
  once and never branch on the name again: they read :attr:`CalendarProvider.capabilities`.
- **ChronaPilot scopes**: the public ``calendar.read`` / ``calendar.write`` (:data:`SCOPES`);
  :meth:`CalendarProvider.provider_scopes` turns them into the provider's own, plus what consent
  needs (sign-in, e-mail, offline access).
- **token source**: ``async (force_refresh) -> str``. The client calls it before each request
  and, once, with ``True`` after a 401; refresh policy lives with the caller (``tokens.py``).
  For iCloud the "token" is ``"<apple id>:<app-specific password>"`` (see
  :func:`basic_credentials`).
- **account**: the provider's stable account id (Google ``sub``, Graph ``/me`` ``id``, the
  CalDAV principal URL) and the e-mail shown to the user.

Every method may raise a :class:`~chronapilot.common.errors.ProviderError` from
:mod:`chronapilot.common.providers.errors`: ``InvalidGrant`` / ``InvalidCredentials``
(re-authentication required), ``Throttled`` and ``Unavailable`` (retryable),
``NotSupported`` (the capability is absent), or a plain ``ProviderError`` (not retryable).

The protocol covers consent and account access. Event sync (``sync_events`` yielding pages and
raising ``CursorExpired``) and push (``create_subscription`` …, ``parse_notification``) will be
added as further methods, gated by :class:`Capabilities`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

#: ChronaPilot's public scopes; a connection asks for both unless told otherwise.
SCOPES: tuple[str, ...] = ("calendar.read", "calendar.write")
READ = "calendar.read"
WRITE = "calendar.write"

#: ``async (force_refresh) -> access token`` (iCloud: ``"<apple id>:<app password>"``).
TokenSource = Callable[[bool], Awaitable[str]]


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answered, tokens in clear: encrypt before storing, never log.

    ``refresh_token`` is None when none was issued (consent without offline access). After a
    refresh it is the one to keep (see :meth:`CalendarProvider.refresh`). ``scopes`` are the
    provider's granted scopes; :meth:`CalendarProvider.granted_scopes` maps them back.
    """

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scopes: tuple[str, ...]

    def __repr__(self) -> str:  # never print a token, even in a traceback
        return f"TokenSet(expires_at={self.expires_at!r}, scopes={self.scopes!r})"


@dataclass(frozen=True)
class Account:
    """The provider account behind a connection. ``id`` is stable; ``email`` may change."""

    id: str
    email: str


@dataclass(frozen=True)
class CalendarInfo:
    """One calendar of the account, as the provider lists it."""

    provider_calendar_id: str
    name: str
    primary: bool
    read_only: bool
    timezone: str | None
    color: str | None


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; services branch on these, never on the provider's name.

    ``oauth``: consent by redirect (else credentials typed into ChronaPilot, checked by
    ``verify``); ``push``: webhook subscriptions (else polling); ``renewable_subscriptions``: a
    subscription's expiry can be extended in place; ``revocation``: ``revoke`` works.
    """

    oauth: bool
    push: bool
    renewable_subscriptions: bool
    revocation: bool


@runtime_checkable
class CalendarProvider(Protocol):
    """One calendar provider. Implementations: Google, Microsoft, iCloud."""

    name: str
    capabilities: Capabilities

    def provider_scopes(self, scopes: Sequence[str]) -> list[str]:
        """The provider scopes to request for ChronaPilot ``scopes`` (plus sign-in and offline
        access). Raises ``ValueError`` for an unknown ChronaPilot scope."""
        ...

    def granted_scopes(self, tokens: TokenSet) -> tuple[str, ...]:
        """The ChronaPilot scopes ``tokens`` actually carry (users may untick some on consent)."""
        ...

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_verifier: str,
        scopes: Sequence[str],
        login_hint: str | None = None,
    ) -> str:
        """The consent page URL (code flow, PKCE S256). iCloud: ``NotSupported``."""
        ...

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Redeem the code from the consent callback. A bad, reused or expired code:
        ``InvalidGrant``."""
        ...

    async def refresh(self, refresh_token: str, *, scopes: Sequence[str] | None = None) -> TokenSet:
        """A new access token, and the refresh token to keep: a rotated one (Microsoft; store it
        atomically, replacing the old) or ``refresh_token`` itself (Google). The grant is gone:
        ``InvalidGrant`` (never retry it).

        ``scopes``: the ChronaPilot scopes the connection was granted, for providers that must
        name them again (Microsoft); None means "whatever was consented"."""
        ...

    async def revoke(self, token: str) -> None:
        """Revoke the grant (a token already revoked counts as done). Without
        ``capabilities.revocation``: ``NotSupported``."""
        ...

    async def account(self, token: TokenSource) -> Account:
        """The signed-in account."""
        ...

    async def list_calendars(self, token: TokenSource) -> list[CalendarInfo]:
        """Every event calendar of the account (iCloud: VEVENT collections only)."""
        ...


@runtime_checkable
class CredentialVerifier(Protocol):
    """Providers without OAuth (``capabilities.oauth`` is False): credentials typed by the user."""

    async def verify(self, username: str, app_password: str) -> tuple[Account, list[CalendarInfo]]:
        """Check the credentials by discovery; wrong ones raise ``InvalidCredentials``."""
        ...


def basic_credentials(username: str, password: str) -> str:
    """The token-source value of a password provider: ``"<username>:<password>"``."""
    if ":" in username:
        raise ValueError("a username cannot contain ':'")
    return f"{username}:{password}"


def split_basic_credentials(value: str) -> tuple[str, str]:
    """The inverse of :func:`basic_credentials` (the password may contain ``:``)."""
    username, sep, password = value.partition(":")
    if not sep or not username:
        raise ValueError("expected '<username>:<password>'")
    return username, password


def check_scopes(scopes: Sequence[str]) -> frozenset[str]:
    """ChronaPilot ``scopes`` as a set; ``ValueError`` for an unknown one or none."""
    chosen = frozenset(scopes)
    unknown = chosen - set(SCOPES)
    if unknown or not chosen:
        raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {sorted(chosen)}")
    return chosen
