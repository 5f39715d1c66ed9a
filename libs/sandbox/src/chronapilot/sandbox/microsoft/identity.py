"""Identity platform v2: `/{tenant}/oauth2/v2.0/authorize` (consent page) and `/token`.

The consent page is the shared sandbox page: the account's e-mail and password, the scopes,
Allow and Deny. Allow redirects to `redirect_uri` with `code`, `state` and `session_state`;
Deny with `error=access_denied`, an `AADSTS65004` description, `error_subcode=cancel` and
`state`. Requests that cannot be redirected safely (unknown client, unregistered redirect URI,
unknown tenant) get an error page instead, as Entra shows.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from chronapilot.sandbox.shared.consent import ConsentPage, ScopeChoice, render_consent_page

from .credentials import Grant, normalize_scopes
from .errors import AadstsError
from .grants import CODE_TTL
from .state import MicrosoftState, state_key

AUTHORIZE_PARAMS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "response_mode",
    "scope",
    "state",
    "prompt",
    "login_hint",
    "domain_hint",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)
SCOPE_TEXT = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    "User.Read": "Sign you in and read your profile",
    "Calendars.Read": "Read your calendars",
    "Calendars.ReadWrite": "Have full access to your calendars",
}


def routes() -> list[web.RouteDef]:
    return [
        web.get("/{tenant}/oauth2/v2.0/authorize", show_consent),
        web.post("/{tenant}/oauth2/v2.0/authorize", decide_consent),
        web.post("/{tenant}/oauth2/v2.0/token", token),
    ]


def _error_page(status: int, code: int, text: str) -> web.Response:
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>'
        f"<body><main><h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p role="alert">AADSTS{code}: {html.escape(text)}</p></main></body></html>'
    )
    return web.Response(status=status, text=body, content_type="text/html")


def _redirect(uri: str, mode: str, params: dict[str, str]) -> web.Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    if mode == "form_post":
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if v is not None
        )
        page = (
            "<!DOCTYPE html><html><head><title>Working...</title></head>"
            '<body onload="document.forms[0].submit()">'
            f'<form method="POST" action="{html.escape(uri)}">{inputs}'
            "<noscript><button type=submit>Continue</button></noscript></form></body></html>"
        )
        return web.Response(text=page, content_type="text/html")
    separator = "#" if mode == "fragment" else ("&" if "?" in uri else "?")
    raise web.HTTPFound(f"{uri}{separator}{query}")


def _check_request(state: MicrosoftState, tenant: str, params: dict[str, str]) -> web.Response | None:
    """An error page when the request cannot be answered by redirect."""
    if not state.known_tenant(tenant):
        return _error_page(400, 90002, f"Tenant '{tenant}' not found.")
    app = state.identity.app(params.get("client_id", ""))
    if app is None:
        return _error_page(
            400,
            700016,
            f"Application with identifier '{params.get('client_id', '')}' was not found in the directory.",
        )
    if not redirect_allowed(app.redirect_uris, params.get("redirect_uri", "")):
        return _error_page(
            400,
            50011,
            f"The redirect URI '{params.get('redirect_uri', '')}' specified in the request does not match "
            f"the redirect URIs configured for the application '{app.client_id}'.",
        )
    return None


def redirect_allowed(registered: list[str], uri: str) -> bool:
    """Exact match, as Entra requires; a registered value ending in `*` (a sandbox extension,
    used by the default app so any callback path of ChronaPilot's API works) matches by prefix."""
    return any(uri == r or (r.endswith("*") and _prefix_match(r[:-1], uri)) for r in registered)


def _prefix_match(prefix: str, uri: str) -> bool:
    # The host must be the pattern's own (no `http://127.0.0.1:80@elsewhere` tricks).
    host = urlsplit(prefix.rstrip(":") if prefix.endswith(":") else prefix).hostname
    try:
        return uri.startswith(prefix) and urlsplit(uri).hostname == host
    except ValueError:
        return False


def _protocol_error(params: dict[str, str]) -> tuple[str, int, str] | None:
    if params.get("response_type") != "code":
        return "unsupported_response_type", 700054, "response_type must be 'code' for this application."
    if not params.get("scope"):
        return "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method not in (None, "", "S256", "plain"):
        return "invalid_request", 9002313, "Invalid request. Request is malformed or invalid."
    return None


async def show_consent(request: web.Request) -> web.Response:
    state = request.app[state_key]
    tenant = request.match_info["tenant"]
    params = {k: request.query[k] for k in AUTHORIZE_PARAMS if k in request.query}
    page_error = _check_request(state, tenant, params)
    if page_error is not None:
        return page_error
    mode = params.get("response_mode") or "query"
    failure = _protocol_error(params)
    if failure is not None:
        error, code, text = failure
        return _redirect(
            params["redirect_uri"],
            mode,
            {"error": error, "error_description": f"AADSTS{code}: {text}", "state": params.get("state", "")},
        )
    if params.get("prompt") == "none":
        return _redirect(
            params["redirect_uri"],
            mode,
            {
                "error": "login_required",
                "error_description": (
                    "AADSTS50058: A silent sign-in request was sent but no user is signed in."
                ),
                "state": params.get("state", ""),
            },
        )
    hint = params.get("login_hint") or ""
    user = state.store.user_by_email(hint) if hint else None
    if user is None and state.store.users:
        user = next(iter(state.store.users.values()))
    return _consent_page(state, request.path, params, user.user_principal_name if user else hint, None)


def _consent_page(
    state: MicrosoftState, action: str, params: dict[str, str], email: str, error: str | None
) -> web.Response:
    app = state.identity.apps[params["client_id"]]
    scopes = [ScopeChoice(s, SCOPE_TEXT.get(s, f"Access {s}")) for s in normalize_scopes(params["scope"])]
    page = ConsentPage(
        provider="Microsoft",
        client_name=app.name,
        account_email=email,
        scopes=scopes,
        action=action,
        hidden_fields=params,
        ask_password=True,
        error=error,
    )
    return web.Response(text=render_consent_page(page), content_type="text/html")


async def decide_consent(request: web.Request) -> web.Response:
    state = request.app[state_key]
    tenant = request.match_info["tenant"]
    form = await request.post()
    params = {k: str(form[k]) for k in AUTHORIZE_PARAMS if k in form}
    page_error = _check_request(state, tenant, params)
    if page_error is not None:
        return page_error
    mode = params.get("response_mode") or "query"
    failure = _protocol_error(params)
    if failure is not None:
        error, code, text = failure
        return _redirect(
            params["redirect_uri"], mode, {"error": error, "error_description": f"AADSTS{code}: {text}"}
        )
    if form.get("decision") != "allow":
        return _redirect(
            params["redirect_uri"],
            mode,
            {
                "error": "access_denied",
                "error_subcode": "cancel",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
                "state": params.get("state", ""),
            },
        )
    email = str(form.get("email") or "")
    user = state.store.user_by_email(email)
    if user is None or not secrets.compare_digest(
        str(form.get("password") or "").encode(), user.password.encode()
    ):
        return _consent_page(
            state,
            request.path,
            params,
            email,
            "Your account or password is incorrect. (AADSTS50126)",
        )
    issued = state.identity.issue_code(
        client_id=params["client_id"],
        user_id=user.id,
        scopes=normalize_scopes(params["scope"]),
        redirect_uri=params["redirect_uri"],
        tenant=tenant,
        challenge=params.get("code_challenge") or None,
        method=params.get("code_challenge_method") or None,
        nonce=params.get("nonce"),
        expires_at=state.clock.now() + CODE_TTL,
    )
    state.changed()
    return _redirect(
        params["redirect_uri"],
        mode,
        {"code": issued.code, "state": params.get("state", ""), "session_state": secrets.token_hex(16)},
    )


def _client_credentials(request: web.Request, form: dict[str, str]) -> tuple[str, str | None]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except ValueError:
            raise AadstsError(
                "invalid_client", 7000215, "Invalid client secret provided.", status=401
            ) from None
        from urllib.parse import unquote_plus

        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return form.get("client_id", ""), form.get("client_secret")


async def token(request: web.Request) -> web.Response:
    state = request.app[state_key]
    tenant = request.match_info["tenant"]
    try:
        return await _token(request, state, tenant)
    except AadstsError as exc:
        return exc.response()


async def _token(request: web.Request, state: MicrosoftState, tenant: str) -> web.Response:
    if not state.known_tenant(tenant):
        raise AadstsError("invalid_request", 90002, f"Tenant '{tenant}' not found.")
    form = {k: str(v) for k, v in (await request.post()).items()}
    grant_type = form.get("grant_type")
    if not grant_type:
        raise AadstsError(
            "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
        )
    client_id, secret = _client_credentials(request, form)
    if not client_id:
        raise AadstsError(
            "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
        )
    now = state.clock.now()
    nonce: str | None = None
    resource_scopes: list[str] | None = None
    if grant_type == "authorization_code":
        code = form.get("code")
        if not code:
            raise AadstsError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'code'."
            )
        state.identity.authenticate_client(client_id, secret)
        record = state.identity.codes.get(code)
        nonce = record.nonce if record is not None else None
        grant = state.identity.redeem_code(
            code, client_id, form.get("redirect_uri"), tenant, form.get("code_verifier"), now
        )
    elif grant_type == "refresh_token":
        refresh = form.get("refresh_token")
        if not refresh:
            raise AadstsError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        state.identity.authenticate_client(client_id, secret)
        redeemed, grant = state.identity.live_refresh_token(refresh, client_id, now)
        resource_scopes = _check_refresh_scopes(form.get("scope"), grant, state.identity.apps[client_id].name)
        redeemed.state = "rotated"  # strict rotation: only the new refresh token works from now on
    else:
        raise AadstsError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )
    user = state.store.user(grant.user_id)
    claims: dict[str, Any] = {
        "sub": _pairwise_sub(user.id, client_id),
        "oid": user.id,
        "preferred_username": user.user_principal_name,
        "name": user.display_name,
        "email": user.mail or user.user_principal_name,
    }
    body = state.identity.issue_tokens(
        grant, tenant, now, claims, state.issuer(tenant), nonce, resource_scopes=resource_scopes
    )
    state.changed()
    return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _check_refresh_scopes(raw: str | None, grant: Grant, app_name: str) -> list[str] | None:
    """The Graph scopes a refresh asks for (None: all granted); 65001 if any was never consented."""
    if not raw:
        return None
    asked = [s for s in normalize_scopes(raw) if s not in ("openid", "profile", "email", "offline_access")]
    missing = [s for s in asked if s not in grant.scopes]
    if missing:
        raise AadstsError(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application with ID "
            f"'{grant.client_id}' named '{app_name}'. "
            "Send an interactive authorization request for this user and resource.",
            suberror="consent_required",
        )
    return asked or None


def _pairwise_sub(user_id: str, client_id: str) -> str:
    digest = hashlib.sha256(f"{user_id}:{client_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:32]).rstrip(b"=").decode()
