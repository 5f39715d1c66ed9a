"""OpenID Connect discovery: `/{tenant}/v2.0/.well-known/openid-configuration` and the key set.

The document lists the emulator's own endpoints, so an OAuth client configured from it (authlib's
`server_metadata_url`) talks to the emulator only. ID tokens are HS256-signed with the client
secret (OpenID Connect Core §10.1), so the key set is empty; Entra signs with RS256.
"""

from __future__ import annotations

from aiohttp import web

from .errors import aadsts_error
from .state import state_key


def routes() -> list[web.RouteDef]:
    return [
        web.get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        web.get("/{tenant}/discovery/v2.0/keys", keys),
    ]


async def openid_configuration(request: web.Request) -> web.Response:
    state = request.app[state_key]
    tenant = request.match_info["tenant"]
    if not state.known_tenant(tenant):
        return aadsts_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
    base = state.base_url
    issuer_tenant = "{tenantid}" if tenant.lower() in ("common", "organizations") else state.tenant_id
    return web.json_response(
        {
            "issuer": f"{base}/{issuer_tenant}/v2.0",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "nbf",
                "name",
                "email",
                "preferred_username",
                "oid",
                "tid",
                "nonce",
            ],
            "tenant_region_scope": None,
            "cloud_instance_name": "sandbox.chronapilot.dev",
            "msgraph_host": base.split("://", 1)[-1],
            "request_uri_parameter_supported": False,
        }
    )


async def keys(request: web.Request) -> web.Response:
    return web.json_response({"keys": []})
