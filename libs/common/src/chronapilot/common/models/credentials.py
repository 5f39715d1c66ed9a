"""Provider credentials of one connection, sealed with :class:`~chronapilot.common.crypto.TokenCipher`.

Never read by the API handlers that render connections. ``_id`` is the connection id, which
is also the associated data of every ciphertext here.

A document holds one :data:`~chronapilot.common.providers.base.Credential`, named by ``kind``:

- ``oauth`` (:class:`~chronapilot.common.providers.base.OAuthGrant`): ``access_token``,
  ``refresh_token`` (ciphertexts), ``access_expires_at`` and the provider's ``scopes``;
- ``app_password`` (:class:`~chronapilot.common.providers.base.AppPassword`): ``username`` (the
  account id, e.g. the Apple ID e-mail) and ``password`` (ciphertext); ``scopes`` are the
  ChronaPilot scopes asked for.

Documents written before ``kind`` existed have none: an app password then sits in
``refresh_token`` next to a ``username`` (:func:`read_credential` reads both shapes; a re-link
rewrites the document in the new one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from chronapilot.common.models.base import StoredModel
from chronapilot.common.providers.base import AppPassword, Credential, OAuthGrant, TokenSet

OAUTH = "oauth"
APP_PASSWORD = "app_password"

#: ``(plaintext) -> ciphertext`` and back, bound to the connection id.
Seal = Callable[[str], str]
Open = Callable[[str], str]


class Credentials(StoredModel):
    provider: str
    kind: Literal["oauth", "app_password"] | None = None  # None: written before ``kind`` existed
    access_token: str | None = None  # ciphertext
    refresh_token: str | None = None  # ciphertext (old app-password documents: the password)
    access_expires_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    username: str | None = None  # app password: the account id (Basic auth user)
    password: str | None = None  # app password: ciphertext
    updated_at: datetime
    version: int = 0


def credential_kind(doc: Mapping[str, Any]) -> str:
    """``oauth`` or ``app_password``; an old document without ``kind`` holding a ``username`` is
    an app password."""
    kind = doc.get("kind")
    if kind is not None:
        return str(kind)
    return APP_PASSWORD if doc.get("username") else OAUTH


def credential_fields(credential: Credential, seal: Seal) -> tuple[dict[str, Any], list[str]]:
    """The fields to ``$set`` for ``credential`` (secrets sealed) and the fields of the other
    shape to ``$unset``, so a rewritten document holds one credential only."""
    if isinstance(credential, AppPassword):
        return {
            "kind": APP_PASSWORD,
            "access_token": None,
            "access_expires_at": None,
            "username": credential.username,
            "password": seal(credential.password),
        }, ["refresh_token"]
    tokens = credential.tokens
    return {
        "kind": OAUTH,
        "access_token": seal(tokens.access_token) if tokens.access_token else None,
        "refresh_token": seal(tokens.refresh_token) if tokens.refresh_token is not None else None,
        "access_expires_at": tokens.expires_at,
        "scopes": list(tokens.scopes),
    }, ["username", "password"]


def read_credential(doc: Mapping[str, Any], open_: Open) -> Credential | None:
    """The credential a document holds, in either shape; None when it holds none usable (no
    password or account id stored)."""
    if credential_kind(doc) == APP_PASSWORD:
        sealed = doc.get("password") if doc.get("kind") == APP_PASSWORD else doc.get("refresh_token")
        username = doc.get("username")
        if sealed is None or not username:
            return None
        return AppPassword(str(username), open_(sealed))
    access, refresh = doc.get("access_token"), doc.get("refresh_token")
    return OAuthGrant(
        TokenSet(
            access_token=open_(access) if access is not None else "",
            refresh_token=open_(refresh) if refresh is not None else None,
            expires_at=doc.get("access_expires_at"),
            scopes=tuple(doc.get("scopes") or ()),
        )
    )
