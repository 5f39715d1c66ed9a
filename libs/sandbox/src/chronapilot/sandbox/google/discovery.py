"""OpenID Connect discovery (``/.well-known/openid-configuration``) and the signing keys.

The document has Google's shape but the emulator's own endpoints, so a client configured from
it (authlib's, for one) talks to the emulator only.
"""

from __future__ import annotations

from aiohttp import web

from chronapilot.sandbox.google.emulator import EMULATOR
from chronapilot.sandbox.google.errors import json_response

routes = web.RouteTableDef()


@routes.get("/.well-known/openid-configuration")
async def openid_configuration(request: web.Request) -> web.Response:
    """The discovery document."""
    base = request.app[EMULATOR].base_url
    return json_response(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/v1/userinfo",
            "revocation_endpoint": f"{base}/revoke",
            "jwks_uri": f"{base}/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "sub"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        }
    )


@routes.get("/oauth2/v3/certs")
async def signing_keys(request: web.Request) -> web.Response:
    """The JWK set that verifies ID tokens."""
    return json_response(request.app[EMULATOR].signer.jwks())
