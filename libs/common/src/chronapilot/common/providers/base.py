"""The one provider interface: what ChronaPilot asks of Google, Microsoft and iCloud.

Glossary:

- **provider**: an implementation of :class:`CalendarProvider`, built by
  :func:`chronapilot.common.providers.registry.build_providers`; services look it up by name
  once and never branch on the name again: they read :attr:`CalendarProvider.capabilities` and
  its optional components (``push``, ``password_sign_in``).
- **ChronaPilot scopes**: the public ``calendar.read`` / ``calendar.write`` (:data:`SCOPES`);
  :meth:`CalendarProvider.provider_scopes` turns them into the provider's own, plus what consent
  needs (sign-in, e-mail, offline access).
- **token source**: ``async (force_refresh) -> str``. The client calls it before each request
  and, once, with ``True`` after a 401; refresh policy lives with the caller (``tokens.py``).
  For a password provider (iCloud) the "token" is ``"<apple id>:<app-specific password>"``
  (:meth:`AppPassword.token`).
- **credential**: what a connection holds to act for the user, one of two frozen value types
  (:data:`Credential`): an :class:`OAuthGrant` (the tokens of an OAuth consent) or an
  :class:`AppPassword` (an account id and an app-specific password typed into ChronaPilot's
  hosted page). Neither shows a secret in its ``repr``.
- **account**: the provider's stable account id (Google ``sub``, Graph ``/me`` ``id``, the
  CalDAV principal URL) and the e-mail shown to the user.
- **components**: optional parts of a provider, ``None`` when it lacks them, so a caller checks
  once and mypy narrows: :attr:`CalendarProvider.push` (webhook subscriptions,
  :class:`~chronapilot.common.providers.push.PushSubscriptions`; None: polled) and
  :attr:`CalendarProvider.password_sign_in` (:class:`PasswordSignIn`: no OAuth, the user types an
  :class:`AppPassword` into the hosted page its :class:`PasswordForm` describes).

Every method may raise a :class:`~chronapilot.common.errors.ProviderError` from
:mod:`chronapilot.common.providers.errors`: ``InvalidGrant`` / ``InvalidCredentials``
(re-authentication required), ``Throttled`` and ``Unavailable`` (retryable),
``NotSupported`` (the capability is absent), or a plain ``ProviderError`` (not retryable).

The protocol covers consent, account access and event sync (``sync_events`` yielding pages and
raising ``CursorExpired``: :mod:`chronapilot.common.providers.sync`); push
(``create_subscription`` …, ``parse_notification``) is the :attr:`CalendarProvider.push`
component (:mod:`chronapilot.common.providers.push`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # both import this module
    from chronapilot.common.providers.push import PushSubscriptions
    from chronapilot.common.providers.sync import EventPage

#: ChronaPilot's public scopes; a connection asks for both unless told otherwise.
SCOPES: tuple[str, ...] = ("calendar.read", "calendar.write")
READ = "calendar.read"
WRITE = "calendar.write"

#: ``async (force_refresh) -> access token`` (iCloud: :meth:`AppPassword.token`).
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
class OAuthGrant:
    """The credential of an OAuth consent: the tokens the provider issued (see :class:`TokenSet`)."""

    tokens: TokenSet


@dataclass(frozen=True)
class AppPassword:
    """The credential of a password provider: the account id (iCloud: the Apple ID e-mail) and
    an app-specific password, in clear: seal before storing, never log.

    The account id cannot hold ``:`` (it is the user part of HTTP Basic); ``ValueError`` else.
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if ":" in self.username:
            raise ValueError("a username cannot contain ':'")

    def __repr__(self) -> str:  # neither the password nor the account id, even in a traceback
        return "AppPassword(...)"

    def token(self) -> str:
        """The token-source value: ``"<username>:<password>"``."""
        return f"{self.username}:{self.password}"

    @classmethod
    def from_token(cls, value: str) -> AppPassword:
        """The inverse of :meth:`token` (the password may contain ``:``)."""
        username, sep, password = value.partition(":")
        if not sep or not username:
            raise ValueError("expected '<username>:<password>'")
        return cls(username, password)


#: What a connection holds to act for its user.
Credential = OAuthGrant | AppPassword


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

    ``oauth``: consent by redirect (else an :class:`AppPassword` typed into ChronaPilot's page,
    checked by :attr:`CalendarProvider.password_sign_in`); ``revocation``: ``revoke`` works.
    Push is not a flag: it is the :attr:`CalendarProvider.push` component (None: polling), and
    whether its subscriptions renew in place is ``push.renewable``. ``window_roll``: a provider
    whose full sync reads a window relative to its start (Microsoft) has it rolled forward by a
    full sync once the last one is this old (else None). ``series_as_instances``: the provider's
    sync mirrors a recurring series as its occurrences and exceptions, never its master
    (Microsoft's calendar view), so a master that a write-back answer brings into the mirror is
    kept for what it says of the series but not expanded (its occurrences come from the sync).
    """

    oauth: bool
    revocation: bool
    window_roll: timedelta | None = None
    series_as_instances: bool = False


@dataclass(frozen=True)
class PasswordForm:
    """How ChronaPilot's hosted page asks for a password provider's :class:`AppPassword`.

    Plain text (the page escapes it). The page reads: "Connect your ``provider_label``
    calendar"; "Sign in with your ``account_label`` and a(n) **``password_term``**
    ``password_help``"; the fields ``account_label`` and ``password_label``, with
    ``password_hint`` under the latter. Its messages name ``account_label``, ``password_term``
    and ``provider_label`` ("… could not be reached just now").
    """

    provider_label: str
    account_label: str
    #: The account id is an e-mail address: the page asks for one and refuses one without ``@``.
    account_is_email: bool
    password_label: str
    password_term: str
    password_help: str
    password_hint: str


class PasswordSignIn(Protocol):
    """The sign-in of a provider without OAuth (``capabilities.oauth`` False): the
    :attr:`CalendarProvider.password_sign_in` component."""

    @property
    def form(self) -> PasswordForm:
        """What the hosted page shows and checks."""
        ...

    async def verify(self, credential: AppPassword) -> tuple[Account, list[CalendarInfo]]:
        """Check ``credential`` by discovery; wrong ones raise ``InvalidCredentials``."""
        ...


@runtime_checkable
class CalendarProvider(Protocol):
    """One calendar provider. Implementations: Google, Microsoft, iCloud."""

    name: str
    capabilities: Capabilities

    @property
    def push(self) -> PushSubscriptions | None:
        """Webhook subscriptions on calendars, and parsing their notifications; None when the
        provider has none (iCloud: its connections are polled)."""
        ...

    @property
    def password_sign_in(self) -> PasswordSignIn | None:
        """The app-password sign-in of a provider without OAuth (iCloud); None for OAuth ones."""
        ...

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

    def sync_events(
        self, token: TokenSource, calendar_id: str, cursor: str | None
    ) -> AsyncIterator[EventPage]:
        """Pages of upserts and deletions of one calendar; the last page carries the next cursor
        (:mod:`chronapilot.common.providers.sync`).

        ``cursor`` None = full sync. A dead cursor raises ``CursorExpired`` before any page;
        429/503 raise ``Throttled`` (``retry_after`` set when the provider gave one); a 401
        after one forced refresh raises ``InvalidGrant``/``InvalidCredentials``.
        """
        ...


def check_scopes(scopes: Sequence[str]) -> frozenset[str]:
    """ChronaPilot ``scopes`` as a set; ``ValueError`` for an unknown one or none."""
    chosen = frozenset(scopes)
    unknown = chosen - set(SCOPES)
    if unknown or not chosen:
        raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {sorted(chosen)}")
    return chosen
