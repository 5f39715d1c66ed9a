"""Calendar providers: one interface (:mod:`.base`), three implementations, one registry.

Services import from here::

    from chronapilot.common.providers import build_providers, CalendarProvider, TokenSet

and never from a provider's module: provider differences stay inside ``google/``,
``microsoft/`` and ``icloud/``.

Optional parts are components, None when absent: ``provider.push``
(:class:`~chronapilot.common.providers.push.PushSubscriptions`) and
``provider.password_sign_in`` (:class:`PasswordSignIn`). A connection's credential is an
:class:`OAuthGrant` or an :class:`AppPassword` (:data:`Credential`).

Sync: ``provider.sync_events(token, calendar_id, cursor)`` yields :class:`EventPage` s of
:class:`EventData` (upserts) and provider event ids (deletions), the next cursor on the last
page; ``cursor=None`` is a full sync and a dead cursor raises :class:`CursorExpired` before any
page. Cursors, ids and the rules for applying a page: :mod:`chronapilot.common.providers.sync`.
"""

from chronapilot.common.providers.base import (
    READ,
    SCOPES,
    WRITE,
    Account,
    AppPassword,
    CalendarInfo,
    CalendarProvider,
    Capabilities,
    Credential,
    OAuthGrant,
    PasswordForm,
    PasswordSignIn,
    TokenSet,
    TokenSource,
)
from chronapilot.common.providers.errors import (
    CursorExpired,
    InvalidCredentials,
    InvalidGrant,
    NotSupported,
    ProviderError,
    Throttled,
    Unavailable,
)
from chronapilot.common.providers.oauth import code_challenge, new_code_verifier, new_state
from chronapilot.common.providers.push import PushSubscriptions
from chronapilot.common.providers.registry import PROVIDER_NAMES, build_providers
from chronapilot.common.providers.sync import Attendee, EventData, EventPage, EventTime

__all__ = [
    "PROVIDER_NAMES",
    "READ",
    "SCOPES",
    "WRITE",
    "Account",
    "AppPassword",
    "Attendee",
    "CalendarInfo",
    "CalendarProvider",
    "Capabilities",
    "Credential",
    "CursorExpired",
    "EventData",
    "EventPage",
    "EventTime",
    "InvalidCredentials",
    "InvalidGrant",
    "NotSupported",
    "OAuthGrant",
    "PasswordForm",
    "PasswordSignIn",
    "ProviderError",
    "PushSubscriptions",
    "Throttled",
    "TokenSet",
    "TokenSource",
    "Unavailable",
    "build_providers",
    "code_challenge",
    "new_code_verifier",
    "new_state",
]
