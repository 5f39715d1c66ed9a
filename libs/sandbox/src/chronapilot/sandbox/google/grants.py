"""OAuth 2.0 as Google's authorization server: codes, token grants, refresh, revocation, bearer checks.

:class:`Authority` holds the rules; ``oauth.py`` maps HTTP onto it. What it enforces, in
Google's words (``errors``): codes are single-use and expire after ``CODE_TTL`` seconds;
``redirect_uri`` must be registered and equal the one the code was issued for; PKCE (``S256`` or
``plain``) is verified; a refresh token is issued only with ``access_type=offline`` when the user
saw consent for the first time or with ``prompt=consent``; refresh tokens are not rotated;
an account keeps at most ``MAX_REFRESH_TOKENS`` live refresh tokens per client (the oldest is
silently invalidated); revoking any token removes the client's access for that account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chronapilot.sandbox.google.errors import OAuthError
from chronapilot.sandbox.google.id_tokens import IdTokenSigner, access_token_hash
from chronapilot.sandbox.google.store import (
    AccessToken,
    Account,
    AuthorizationCode,
    GoogleStore,
    Grant,
    OAuthClient,
)
from chronapilot.sandbox.shared.clock import SandboxClock
from chronapilot.sandbox.shared.pkce import verify_code_verifier

CODE_TTL = 600
MAX_REFRESH_TOKENS = 100
CALENDAR = "https://www.googleapis.com/auth/calendar"
SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
EVENTS_READ_SCOPES = frozenset(
    {CALENDAR, f"{CALENDAR}.readonly", f"{CALENDAR}.events", f"{CALENDAR}.events.readonly"}
)
EVENTS_WRITE_SCOPES = frozenset({CALENDAR, f"{CALENDAR}.events"})
CALENDAR_LIST_SCOPES = frozenset(
    {CALENDAR, f"{CALENDAR}.readonly", f"{CALENDAR}.calendarlist", f"{CALENDAR}.calendarlist.readonly"}
)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def normalize_scopes(scope: str) -> list[str]:
    """Space-separated scopes with Google's aliases expanded, de-duplicated and sorted."""
    return sorted({SCOPE_ALIASES.get(item, item) for item in scope.split()})


def missing_parameter(name: str) -> OAuthError:
    """Google's ``invalid_request`` for an absent parameter."""
    return OAuthError(400, "invalid_request", f"Missing required parameter: {name}")


@dataclass(frozen=True)
class Bearer:
    """A valid access token with its grant and account."""

    token: AccessToken
    grant: Grant
    account: Account

    @property
    def scopes(self) -> list[str]:
        """The token's scopes (a refresh may have asked for fewer than the grant holds)."""
        return self.token.scopes or self.grant.scopes

    def allows(self, scopes: frozenset[str]) -> bool:
        """True when the token holds any of ``scopes``."""
        return not scopes.isdisjoint(self.scopes)


class Authority:
    """Issues and checks codes and tokens."""

    def __init__(
        self,
        store: GoogleStore,
        clock: SandboxClock,
        signer: IdTokenSigner,
        *,
        issuer: str,
        access_token_ttl: int,
    ) -> None:
        self._store = store
        self._clock = clock
        self._signer = signer
        self._issuer = issuer
        self._access_token_ttl = access_token_ttl

    def client(self, client_id: str | None) -> OAuthClient | None:
        """The registered client, if any."""
        return self._store.clients.get(client_id or "")

    @staticmethod
    def redirect_allowed(client: OAuthClient, redirect_uri: str) -> bool:
        """Exact match with a registered URI, or any loopback http URI if the client allows it."""
        if redirect_uri in client.redirect_uris:
            return True
        parts = urlsplit(redirect_uri)
        return (
            client.allow_loopback_redirects and parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
        )

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        """The client, if the id is known and the secret right; else 401 ``invalid_client``."""
        client = self.client(client_id)
        if client is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if client_secret is None or not secrets.compare_digest(client_secret, client.client_secret):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client

    def has_refresh_token(self, account: Account, client: OAuthClient) -> bool:
        """True when ``account`` already gave ``client`` a live refresh token."""
        return any(self._live_refresh_grants(account.sub, client.client_id))

    def issue_code(
        self,
        client: OAuthClient,
        account: Account,
        *,
        redirect_uri: str,
        scopes: list[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
        nonce: str | None,
        issue_refresh_token: bool,
    ) -> AuthorizationCode:
        """A fresh authorization code for the consent just given."""
        code = AuthorizationCode(
            code=f"4/0{secrets.token_urlsafe(48)}",
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            account_sub=account.sub,
            scopes=scopes,
            expires_at=self._clock.now() + CODE_TTL,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method if code_challenge else None,
            nonce=nonce,
            issue_refresh_token=issue_refresh_token,
        )
        self._store.codes[code.code] = code
        self._store.changed()
        return code

    def exchange_code(
        self, client: OAuthClient, code_value: str | None, redirect_uri: str | None, verifier: str | None
    ) -> dict[str, Any]:
        """grant_type=authorization_code."""
        if not code_value:
            raise missing_parameter("code")
        if not redirect_uri:
            raise missing_parameter("redirect_uri")
        if not self.redirect_allowed(client, redirect_uri):
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        code = self._store.codes.get(code_value)
        if code is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if (
            code.used
            or code.expires_at <= self._clock.now()
            or code.client_id != client.client_id
            or code.redirect_uri != redirect_uri
        ):
            raise OAuthError(400, "invalid_grant", "Bad Request")
        self._check_verifier(code, verifier)
        code.used = True
        grant = Grant(
            id=secrets.token_hex(8),
            account_sub=code.account_sub,
            client_id=client.client_id,
            scopes=code.scopes,
            created_at=self._clock.now(),
            refresh_token=f"1//0{secrets.token_urlsafe(64)}" if code.issue_refresh_token else None,
        )
        self._store.grants[grant.id] = grant
        self._enforce_refresh_token_limit(grant)
        response = self._token_response(grant, nonce=code.nonce)
        if grant.refresh_token:
            response["refresh_token"] = grant.refresh_token
        self._store.changed()
        return response

    def refresh(
        self, client: OAuthClient, refresh_token: str | None, scope: str | None = None
    ) -> dict[str, Any]:
        """grant_type=refresh_token (no rotation: the response has no refresh_token).

        ``scope``, if given, must be within the grant; the new access token then has just those.
        """
        if not refresh_token:
            raise missing_parameter("refresh_token")
        grant = self._store.grant_by_refresh_token(refresh_token)
        if grant is None or not grant.refreshable:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client.client_id:
            raise OAuthError(400, "unauthorized_client", "Unauthorized")
        scopes = normalize_scopes(scope) if scope else grant.scopes
        if not set(scopes) <= set(grant.scopes):
            raise OAuthError(400, "invalid_scope", "Bad Request")
        response = self._token_response(grant, nonce=None, scopes=scopes)
        self._store.changed()
        return response

    def revoke(self, token: str | None) -> None:
        """Revoke the client's access for the account owning ``token`` (refresh or access)."""
        grant = self._grant_for_token(token or "")
        if grant is None or grant.revoked or (token == grant.refresh_token and grant.refresh_expired):
            raise OAuthError(400, "invalid_token", "Token expired or revoked")
        self.revoke_access(grant.account_sub, grant.client_id)

    def revoke_access(self, account_sub: str, client_id: str | None = None) -> int:
        """Revoke every grant ``account_sub`` gave (``client_id``: only that client's); the count."""
        revoked = 0
        for grant in self._store.grants.values():
            if (
                grant.account_sub == account_sub
                and client_id in (None, grant.client_id)
                and not grant.revoked
            ):
                grant.revoked = True
                revoked += 1
        self._store.changed()
        return revoked

    def bearer(self, token: str) -> Bearer | None:
        """The valid access token ``token`` with its grant and account, or None."""
        access = self._store.access_tokens.get(token)
        if access is None or access.expires_at <= self._clock.now():
            return None
        grant = self._store.grants.get(access.grant_id)
        if grant is None or grant.revoked:
            return None
        return Bearer(access, grant, self._store.accounts[grant.account_sub])

    def expire_access_tokens(self, *, token: str | None = None, account_sub: str | None = None) -> int:
        """Make access tokens expire now (one token, an account's, or all); the count."""
        now = self._clock.now()
        expired = 0
        for access in self._store.access_tokens.values():
            grant = self._store.grants.get(access.grant_id)
            owner = grant.account_sub if grant else None
            if token in (None, access.token) and account_sub in (None, owner) and access.expires_at > now:
                access.expires_at = now
                expired += 1
        self._store.changed()
        return expired

    def expire_refresh_tokens(self, *, token: str | None = None, account_sub: str | None = None) -> int:
        """Make refresh tokens expire now, as unused or "Testing" tokens do; the count."""
        expired = 0
        for grant in self._store.grants.values():
            if not grant.refreshable:
                continue
            if token in (None, grant.refresh_token) and account_sub in (None, grant.account_sub):
                grant.refresh_expired = True
                expired += 1
        self._store.changed()
        return expired

    def expire_codes(self, *, account_sub: str | None = None) -> int:
        """Make unused authorization codes expire now; the count."""
        now = self._clock.now()
        expired = 0
        for code in self._store.codes.values():
            if not code.used and code.expires_at > now and account_sub in (None, code.account_sub):
                code.expires_at = now
                expired += 1
        self._store.changed()
        return expired

    def _check_verifier(self, code: AuthorizationCode, verifier: str | None) -> None:
        if code.code_challenge is None:
            if verifier:
                raise OAuthError(400, "invalid_grant", "code_verifier or verifier is not needed.")
            return
        if not verifier:
            raise OAuthError(400, "invalid_grant", "Missing code verifier.")
        if not verify_code_verifier(verifier, code.code_challenge, code.code_challenge_method):
            raise OAuthError(400, "invalid_grant", "Invalid code verifier.")

    def _token_response(
        self, grant: Grant, *, nonce: str | None, scopes: list[str] | None = None
    ) -> dict[str, Any]:
        now = self._clock.now()
        scopes = scopes or grant.scopes
        token = f"ya29.{secrets.token_urlsafe(96)}"
        access = AccessToken(token, grant.id, now + self._access_token_ttl, scopes)
        self._store.access_tokens[access.token] = access
        self._forget_expired_access_tokens(now)
        response: dict[str, Any] = {
            "access_token": access.token,
            "expires_in": max(self._access_token_ttl - 1, 1),
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if "openid" in scopes:
            response["id_token"] = self._id_token(grant, access.token, now, nonce)
        return response

    def _id_token(self, grant: Grant, access_token: str, now: float, nonce: str | None) -> str:
        account = self._store.accounts[grant.account_sub]
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "azp": grant.client_id,
            "aud": grant.client_id,
            "sub": account.sub,
            "at_hash": access_token_hash(access_token),
            "iat": int(now),
            "exp": int(now) + 3600,
        }
        if SCOPE_ALIASES["email"] in grant.scopes:
            claims.update(email=account.email, email_verified=True)
        if SCOPE_ALIASES["profile"] in grant.scopes:
            claims["name"] = account.name
        if nonce:
            claims["nonce"] = nonce
        return self._signer.sign(claims)

    def _grant_for_token(self, token: str) -> Grant | None:
        access = self._store.access_tokens.get(token)
        if access is not None:
            return self._store.grants.get(access.grant_id)
        return self._store.grant_by_refresh_token(token) if token else None

    def _live_refresh_grants(self, account_sub: str, client_id: str) -> list[Grant]:
        return [
            grant
            for grant in self._store.grants.values()
            if grant.account_sub == account_sub and grant.client_id == client_id and grant.refreshable
        ]

    def _enforce_refresh_token_limit(self, grant: Grant) -> None:
        live = sorted(
            self._live_refresh_grants(grant.account_sub, grant.client_id), key=lambda g: g.created_at
        )
        for oldest in live[: max(len(live) - MAX_REFRESH_TOKENS, 0)]:
            oldest.revoked = True

    def _forget_expired_access_tokens(self, now: float) -> None:
        if len(self._store.access_tokens) % 256:
            return
        horizon = now - 86400
        for token in [t for t, access in self._store.access_tokens.items() if access.expires_at < horizon]:
            del self._store.access_tokens[token]
