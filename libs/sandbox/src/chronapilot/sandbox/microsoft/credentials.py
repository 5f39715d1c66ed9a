"""What the identity platform hands out and remembers: apps, codes, grants, refresh and access
tokens (as records, saved in the state file), scope names, and the JWT shape of tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

SCOPE_PREFIX = "https://graph.microsoft.com/"


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str] = field(default_factory=list)
    secret_expired: bool = False


@dataclass
class AuthCode:
    code: str
    client_id: str
    user_id: str
    scopes: list[str]
    redirect_uri: str
    tenant: str
    challenge: str | None
    method: str | None
    nonce: str | None
    expires_at: float
    redeemed: bool = False


@dataclass
class Grant:
    id: str
    user_id: str
    client_id: str
    scopes: list[str]
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    tenant: str
    expires_at: float
    state: str = "live"  # live | rotated | revoked | expired


@dataclass
class AccessToken:
    token: str
    grant_id: str
    user_id: str
    client_id: str
    scopes: list[str]
    expires_at: float
    revoked: bool = False


def normalize_scopes(raw: str) -> list[str]:
    """Space-separated scopes, `https://graph.microsoft.com/` prefixes removed, order kept."""
    seen: list[str] = []
    for scope in raw.split():
        short = scope[len(SCOPE_PREFIX) :] if scope.lower().startswith(SCOPE_PREFIX) else scope
        if short.lower() == ".default":
            short = "Calendars.ReadWrite"
        if short not in seen:
            seen.append(short)
    return seen


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A compact JWT; HS256-signed with `key`, or with an opaque signature when no key."""
    head = _b64(json.dumps(header, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode()
    signature = hmac.new(key, signing_input, hashlib.sha256).digest() if key else secrets.token_bytes(32)
    return f"{head}.{body}.{_b64(signature)}"
