"""OAuth state of the identity platform: apps, codes, grants, refresh and access tokens.

Rules the emulator enforces (each refusal is an `AadstsError` with the code of the reference):
codes last 10 minutes, are single-use (54005) and bound to client, redirect URI (500112),
tenant (700005) and PKCE challenge (501481); refresh tokens rotate strictly (the old one fails at
once, 70000), die with their grant (50173) or after REFRESH_TOKEN_TTL (700082); access tokens
last `access_token_ttl` seconds.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import asdict
from typing import Any

from chronapilot.sandbox.shared.pkce import verify_code_verifier

from .credentials import AccessToken, AuthCode, Grant, OAuthApp, RefreshToken, jwt
from .errors import AadstsError

CODE_TTL = 600.0
REFRESH_TOKEN_TTL = 90 * 24 * 3600.0
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "email", "profile", "offline_access"})
INTERACTION_TEXT = {
    50076: "Due to a configuration change made by your administrator, or because you moved to a new "
    "location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.",
    50079: "Due to a configuration change made by your administrator, or because you moved to a new "
    "location, you must enroll in multi-factor authentication to access "
    "'00000003-0000-0000-c000-000000000000'.",
    65001: "The user or administrator has not consented to use the application. Send an interactive "
    "authorization request for this user and resource.",
}


class Identity:
    """Everything the authorize and token endpoints remember."""

    def __init__(self, tenant_id: str, access_token_ttl: int) -> None:
        self.tenant_id = tenant_id
        self.access_token_ttl = access_token_ttl
        self.apps: dict[str, OAuthApp] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        # user id -> (error, AADSTS code, suberror) the next refreshes answer until a new sign-in
        self.interaction_required: dict[str, tuple[str, int, str | None]] = {}

    # apps ------------------------------------------------------------------------------------

    def app(self, client_id: str) -> OAuthApp | None:
        return self.apps.get(client_id)

    def authenticate_client(self, client_id: str, secret: str | None) -> OAuthApp:
        app = self.apps.get(client_id)
        if app is None:
            raise AadstsError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory 'Sandbox'.",
            )
        if not secret:
            raise AadstsError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.",
                status=401,
            )
        if not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
            raise AadstsError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                "client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
                status=401,
            )
        if app.secret_expired:
            raise AadstsError(
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure "
                "portal to create new keys for your app or consider using certificate credentials "
                "for added security.",
                status=401,
            )
        return app

    # codes -----------------------------------------------------------------------------------

    def issue_code(self, **kwargs: Any) -> AuthCode:
        code = AuthCode(code="1.AQ" + secrets.token_urlsafe(96), **kwargs)
        self.codes[code.code] = code
        return code

    def redeem_code(
        self,
        code: str,
        client_id: str,
        redirect_uri: str | None,
        tenant: str,
        verifier: str | None,
        now: float,
    ) -> Grant:
        record = self.codes.get(code)
        if record is None or record.client_id != client_id:
            raise AadstsError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if record.redeemed:
            raise AadstsError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
                "use an existing refresh token.",
            )
        if now >= record.expires_at:
            raise AadstsError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a "
                "new interactive authorization request for this user and resource.",
            )
        if record.tenant != tenant:
            raise AadstsError(
                "invalid_grant",
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
            )
        if redirect_uri != record.redirect_uri:
            raise AadstsError(
                "invalid_grant",
                500112,
                f"The reply address '{redirect_uri}' does not match the reply address "
                f"'{record.redirect_uri}' provided when requesting Authorization code.",
            )
        if record.challenge is not None:
            if not verifier:
                raise AadstsError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in "
                    "the authorization request for PKCE.",
                )
            if not verify_code_verifier(verifier, record.challenge, record.method):
                raise AadstsError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization "
                    "request for PKCE.",
                )
        record.redeemed = True
        self.interaction_required.pop(record.user_id, None)  # the user just signed in again
        grant = Grant(secrets.token_hex(8), record.user_id, client_id, list(record.scopes))
        self.grants[grant.id] = grant
        return grant

    # refresh ---------------------------------------------------------------------------------

    def live_refresh_token(self, token: str, client_id: str, now: float) -> tuple[RefreshToken, Grant]:
        """The refresh token and its grant, if the token may be redeemed (nothing changes yet)."""
        record = self.refresh_tokens.get(token)
        grant = self.grants.get(record.grant_id) if record is not None else None
        if record is None or grant is None or grant.client_id != client_id or record.state == "rotated":
            # Entra's wording for a refresh token it does not accept; strict rotation lands here too.
            raise AadstsError(
                "invalid_grant",
                70000,
                "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
            )
        if record.state == "revoked" or grant.revoked:
            raise AadstsError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
                "The user might have changed or reset their password.",
            )
        if record.state == "expired" or now >= record.expires_at:
            record.state = "expired"
            raise AadstsError(
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was issued on "
                "an earlier date and was inactive for 90.00:00:00.",
            )
        pending = self.interaction_required.get(grant.user_id)
        if pending is not None:
            error, code, suberror = pending
            raise AadstsError(
                error, code, INTERACTION_TEXT.get(code, "User interaction is required."), suberror=suberror
            )
        return record, grant

    # issuing ---------------------------------------------------------------------------------

    def issue_tokens(
        self,
        grant: Grant,
        tenant: str,
        now: float,
        user_claims: dict[str, Any],
        issuer: str,
        nonce: str | None = None,
        resource_scopes: list[str] | None = None,
    ) -> dict[str, Any]:
        """The token response body for a grant; rotates in a new refresh token when allowed.

        `resource_scopes` narrows the access token to some of the granted Graph scopes (a refresh
        that asks for fewer scopes); the grant itself keeps all of them.
        """
        app = self.apps[grant.client_id]
        oidc = [s for s in grant.scopes if s in OIDC_SCOPES]
        granted = [s for s in grant.scopes if s not in OIDC_SCOPES]
        scopes = oidc + [s for s in granted if resource_scopes is None or s in resource_scopes]
        ttl = self.access_token_ttl
        access = jwt(
            {"typ": "JWT", "alg": "RS256", "kid": "sandbox"},
            {
                "aud": GRAPH_APP_ID,
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now + ttl),
                "appid": grant.client_id,
                "oid": grant.user_id,
                "tid": self.tenant_id,
                "scp": " ".join(s for s in scopes if s not in OIDC_SCOPES),
                "uti": secrets.token_urlsafe(16),
                "ver": "1.0",
            },
            None,
        )
        self.access_tokens[access] = AccessToken(
            access, grant.id, grant.user_id, grant.client_id, scopes, now + ttl
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scopes if s != "offline_access"),
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": access,
        }
        if "offline_access" in grant.scopes:
            refresh = "1.AVEA" + secrets.token_urlsafe(120)
            self.refresh_tokens[refresh] = RefreshToken(refresh, grant.id, tenant, now + REFRESH_TOKEN_TTL)
            body["refresh_token"] = refresh
        if "openid" in grant.scopes:
            claims = {
                "aud": grant.client_id,
                "iss": issuer,
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now + 3600),
                "tid": self.tenant_id,
                "ver": "2.0",
                **user_claims,
            }
            if nonce:
                claims["nonce"] = nonce
            body["id_token"] = jwt(
                {"typ": "JWT", "alg": "HS256", "kid": "client-secret"}, claims, app.client_secret.encode()
            )
        return body

    # access tokens ---------------------------------------------------------------------------

    def access_token(self, token: str, now: float) -> tuple[AccessToken | None, str]:
        """The live access token, or (None, message for the 401)."""
        if not token:
            return None, "Access token is empty."
        record = self.access_tokens.get(token)
        if record is None:
            return (
                None,
                "IDX14100: JWT is not well formed, there are no dots (.).\n"
                "The token needs to be in JWS or JWE Compact Serialization Format."
                if "." not in token
                else "Access token validation failure. Invalid audience.",
            )
        grant = self.grants.get(record.grant_id)
        if record.revoked or grant is None or grant.revoked or now >= record.expires_at:
            return None, "Access token has expired or is not yet valid."
        return record, ""

    # admin -----------------------------------------------------------------------------------

    def expire(self, kind: str, user_id: str | None, now: float) -> int:
        """Let codes, access and/or refresh tokens (of one user, or all) expire now."""
        count = 0
        if kind in ("access", "all"):
            for record in self.access_tokens.values():
                if (user_id is None or record.user_id == user_id) and record.expires_at > now:
                    record.expires_at = now
                    count += 1
        if kind in ("refresh", "all"):
            for refresh in self.refresh_tokens.values():
                grant = self.grants.get(refresh.grant_id)
                if refresh.state == "live" and (user_id is None or (grant and grant.user_id == user_id)):
                    refresh.state = "expired"
                    count += 1
        if kind in ("code", "all"):
            for code in self.codes.values():
                if (user_id is None or code.user_id == user_id) and code.expires_at > now:
                    code.expires_at = now
                    count += 1
        return count

    def revoke(self, user_id: str, client_id: str | None) -> list[Grant]:
        """Revoke a user's grants (to one app, or all): refresh and access tokens stop working."""
        revoked = []
        for grant in self.grants.values():
            if (
                grant.user_id == user_id
                and (client_id is None or grant.client_id == client_id)
                and not grant.revoked
            ):
                grant.revoked = True
                revoked.append(grant)
        ids = {g.id for g in revoked}
        for refresh in self.refresh_tokens.values():
            if refresh.grant_id in ids and refresh.state == "live":
                refresh.state = "revoked"
        return revoked

    # state file ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "apps": [asdict(a) for a in self.apps.values()],
            "codes": [asdict(c) for c in self.codes.values()],
            "grants": [asdict(g) for g in self.grants.values()],
            "refresh_tokens": [asdict(r) for r in self.refresh_tokens.values()],
            "access_tokens": [asdict(a) for a in self.access_tokens.values()],
            "interaction_required": {uid: list(v) for uid, v in self.interaction_required.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.apps = {a["client_id"]: OAuthApp(**a) for a in data.get("apps", [])}
        self.codes = {c["code"]: AuthCode(**c) for c in data.get("codes", [])}
        self.grants = {g["id"]: Grant(**g) for g in data.get("grants", [])}
        self.refresh_tokens = {r["token"]: RefreshToken(**r) for r in data.get("refresh_tokens", [])}
        self.access_tokens = {a["token"]: AccessToken(**a) for a in data.get("access_tokens", [])}
        self.interaction_required = {
            uid: (str(v[0]), int(v[1]), v[2]) for uid, v in data.get("interaction_required", {}).items()
        }
