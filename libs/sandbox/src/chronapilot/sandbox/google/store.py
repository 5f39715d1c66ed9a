"""The Google emulator's in-memory state: accounts, OAuth clients, grants, tokens, calendars.

Plain dataclasses held by :class:`GoogleStore`; behaviour lives in the modules that own each
concept (``grants``, ``event_writes``, ``event_listing``, ``push``). Every mutation ends with
:meth:`GoogleStore.changed` and a :class:`Change`, which tells the listeners (push notifications
for events and calendar-list changes, the state-file saver for everything).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from chronapilot.sandbox.google.event_log import EventLog


@dataclass
class Account:
    """A Google account: ``sub`` is the stable id, the first calendar is the primary one."""

    sub: str
    email: str
    name: str
    password: str | None = None
    calendar_ids: list[str] = field(default_factory=list)
    removed_calendars: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """State-file form."""
        return asdict(self)


@dataclass
class OAuthClient:
    """A registered OAuth client and its redirect URIs."""

    client_id: str
    client_secret: str
    name: str = "ChronaPilot (sandbox)"
    redirect_uris: list[str] = field(default_factory=list)
    allow_loopback_redirects: bool = True

    def to_json(self) -> dict[str, Any]:
        """State-file and admin form."""
        return asdict(self)


@dataclass
class Calendar:
    """A calendar, its presentation in its owner's calendar list, and its events."""

    id: str
    owner_sub: str
    summary: str
    time_zone: str
    log: EventLog
    description: str = ""
    location: str = ""
    color_id: str = "14"
    background_color: str = "#9fe1e7"
    foreground_color: str = "#000000"
    hidden: bool = False
    list_seq: int = 0

    def to_json(self) -> dict[str, Any]:
        """State-file form."""
        data = {key: value for key, value in asdict(self).items() if key != "log"}
        data["log"] = self.log.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calendar:
        """Rebuild from :meth:`to_json`."""
        return cls(**{**data, "log": EventLog.from_json(data["log"])})


@dataclass
class AuthorizationCode:
    """A code issued by the consent page, redeemable once before ``expires_at``."""

    code: str
    client_id: str
    redirect_uri: str
    account_sub: str
    scopes: list[str]
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    nonce: str | None = None
    issue_refresh_token: bool = False
    used: bool = False


@dataclass
class Grant:
    """What an account granted a client; a refresh token, if any, belongs to one grant."""

    id: str
    account_sub: str
    client_id: str
    scopes: list[str]
    created_at: float
    refresh_token: str | None = None
    revoked: bool = False
    refresh_expired: bool = False

    @property
    def refreshable(self) -> bool:
        """True while the grant's refresh token (if any) still works."""
        return self.refresh_token is not None and not self.revoked and not self.refresh_expired


@dataclass
class AccessToken:
    """A bearer token for one grant, valid until ``expires_at``."""

    token: str
    grant_id: str
    expires_at: float
    scopes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """What changed: a calendar's events, an account's calendar list, or a calendar's removal.

    A ``Change()`` with nothing set is any other state change (tokens, grants, channels).
    """

    events_of: Calendar | None = None
    calendar_list_of: Account | None = None
    removed: Calendar | None = None


ChangeListener = Callable[[Change], None]


@dataclass
class GoogleStore:
    """Everything the emulator knows, indexed for the lookups the endpoints make."""

    accounts: dict[str, Account] = field(default_factory=dict)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    list_seq: int = 0
    list_epoch: str = field(default_factory=lambda: secrets.token_hex(6))
    listeners: list[ChangeListener] = field(default_factory=list)

    def account_by_email(self, email: str) -> Account | None:
        """The account with ``email`` (case-insensitive)."""
        wanted = email.strip().lower()
        return next((account for account in self.accounts.values() if account.email.lower() == wanted), None)

    def add_account(self, email: str, name: str, password: str | None, sub: str | None = None) -> Account:
        """Create an account (no calendars yet)."""
        account = Account(sub or str(10**20 + secrets.randbelow(9 * 10**20)), email, name, password)
        self.accounts[account.sub] = account
        return account

    def add_calendar(self, account: Account, calendar: Calendar) -> Calendar:
        """Add ``calendar`` to the store and to ``account``'s calendar list."""
        self.list_seq += 1
        calendar.list_seq = self.list_seq
        self.calendars[calendar.id] = calendar
        account.calendar_ids.append(calendar.id)
        self.changed(Change(calendar_list_of=account))
        return calendar

    def remove_calendar(self, calendar: Calendar) -> None:
        """Delete a secondary calendar (the owner removed it)."""
        account = self.accounts[calendar.owner_sub]
        account.calendar_ids.remove(calendar.id)
        del self.calendars[calendar.id]
        self.list_seq += 1
        account.removed_calendars[calendar.id] = self.list_seq
        self.changed(Change(removed=calendar))
        self.changed(Change(calendar_list_of=account))

    def primary_calendar(self, account: Account) -> Calendar:
        """The account's primary calendar (its id is the account e-mail)."""
        return self.calendars[account.calendar_ids[0]]

    def grant_by_refresh_token(self, token: str) -> Grant | None:
        """The grant holding refresh token ``token``."""
        return next((grant for grant in self.grants.values() if grant.refresh_token == token), None)

    def changed(self, change: Change | None = None) -> None:
        """Tell listeners that state changed (``Change()`` when nothing more specific)."""
        for listener in self.listeners:
            listener(change or Change())

    def to_json(self) -> dict[str, Any]:
        """State-file form (listeners excluded)."""
        return {
            "accounts": [account.to_json() for account in self.accounts.values()],
            "clients": [client.to_json() for client in self.clients.values()],
            "calendars": [calendar.to_json() for calendar in self.calendars.values()],
            "codes": [asdict(code) for code in self.codes.values()],
            "grants": [asdict(grant) for grant in self.grants.values()],
            "access_tokens": [asdict(token) for token in self.access_tokens.values()],
            "list_seq": self.list_seq,
            "list_epoch": self.list_epoch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GoogleStore:
        """Rebuild from :meth:`to_json`."""
        store = cls(list_seq=data["list_seq"])
        store.list_epoch = data.get("list_epoch") or store.list_epoch
        store.accounts = {item["sub"]: Account(**item) for item in data["accounts"]}
        store.clients = {item["client_id"]: OAuthClient(**item) for item in data["clients"]}
        store.calendars = {item["id"]: Calendar.from_json(item) for item in data["calendars"]}
        store.codes = {item["code"]: AuthorizationCode(**item) for item in data["codes"]}
        store.grants = {item["id"]: Grant(**item) for item in data["grants"]}
        store.access_tokens = {item["token"]: AccessToken(**item) for item in data["access_tokens"]}
        return store
