"""The OAuth 2.0 authorization-code flow with PKCE (S256), shared by Google and Microsoft.

authlib does the OAuth work: random values (:func:`new_state`, :func:`new_code_verifier`),
the S256 challenge, the authorization URL and the token request bodies (RFC 6749 §4.1, RFC 7636),
and ``expires_in`` → ``expires_at``. The requests go over the shared aiohttp session through
:class:`~chronapilot.common.providers.http.ProviderHttp`, so timeouts and the provider's error
translation apply to them as to every other call. The client authenticates with
``client_secret_post`` (both providers accept it).

Provider differences stay in the provider: extra authorization parameters (Google's
``access_type=offline&prompt=consent``), extra token parameters (Microsoft's ``scope`` on
refresh) and how errors read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6749.wrappers import OAuth2Token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers.base import TokenSet
from chronapilot.common.providers.http import ProviderHttp
from chronapilot.common.providers.telemetry import Operation

CODE_CHALLENGE_METHOD = "S256"


def new_state() -> str:
    """An unguessable ``state`` value for one consent (CSRF defence)."""
    return str(generate_token(43))


def new_code_verifier() -> str:
    """A PKCE code verifier: 64 characters from the unreserved set (RFC 7636 §4.1 allows 43 to 128)."""
    return str(generate_token(64))


def code_challenge(code_verifier: str) -> str:
    """The S256 challenge of ``code_verifier``."""
    return str(create_s256_code_challenge(code_verifier))


@dataclass(frozen=True)
class OAuthClientConfig:
    """One provider's OAuth client and endpoints."""

    client_id: str
    client_secret: str
    authorization_endpoint: str
    token_endpoint: str


class OAuthCodeFlow:
    """Authorization URL, code exchange and refresh against one authorization server."""

    def __init__(self, config: OAuthClientConfig, http: ProviderHttp) -> None:
        self._config = config
        self._http = http

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_verifier: str,
        scopes: Sequence[str],
        extra: Mapping[str, str | None] | None = None,
    ) -> str:
        """The consent URL: ``response_type=code``, the client, ``redirect_uri``, ``scope``,
        ``state``, the S256 challenge, and ``extra`` (None values are left out)."""
        if not state or not code_verifier:
            raise ValueError("state and code_verifier are required")
        return str(
            prepare_grant_uri(
                self._config.authorization_endpoint,
                self._config.client_id,
                "code",
                redirect_uri=redirect_uri,
                scope=list(scopes),
                state=state,
                code_challenge=code_challenge(code_verifier),
                code_challenge_method=CODE_CHALLENGE_METHOD,
                **dict(extra or {}),
            )
        )

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """``grant_type=authorization_code`` with the PKCE verifier."""
        body = prepare_token_request(
            "authorization_code",
            redirect_uri=redirect_uri,
            code=code,
            code_verifier=code_verifier,
            client_id=self._config.client_id,
            client_secret=self._config.client_secret,
        )
        return await self._token_request(str(body))

    async def refresh(self, refresh_token: str, *, scopes: Sequence[str] | None = None) -> TokenSet:
        """``grant_type=refresh_token``; ``scopes`` when the server wants them named again."""
        extra: dict[str, Any] = {"scope": list(scopes)} if scopes else {}
        body = prepare_token_request(
            "refresh_token",
            refresh_token=refresh_token,
            client_id=self._config.client_id,
            client_secret=self._config.client_secret,
            **extra,
        )
        return await self._token_request(str(body))

    async def _token_request(self, body: str) -> TokenSet:
        answer = await self._http.form(self._config.token_endpoint, body, operation=Operation.TOKEN)
        return token_set(answer.json())


def token_set(body: Mapping[str, Any], *, now: datetime | None = None) -> TokenSet:
    """A token endpoint's success body as a :class:`TokenSet`."""
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderError("the token endpoint answered without an access_token")
    params = {key: value for key, value in body.items() if key in ("expires_in", "expires_at")}
    if now is not None and "expires_in" in params:
        params["expires_at"] = int(now.timestamp()) + int(params.pop("expires_in"))
    expires_at = OAuth2Token(params).get("expires_at")
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_at=datetime.fromtimestamp(int(expires_at), UTC) if expires_at is not None else None,
        scopes=tuple(scope_to_list(scope) or ()) if isinstance(scope, str) else (),
    )
