"""Google's OAuth 2.0 endpoints: consent page, token, revoke, userinfo.

- ``GET /o/oauth2/v2/auth`` checks the client and ``redirect_uri`` (errors are shown as a page,
  never redirected, as Google does), then shows the consent page; ``prompt=none`` answers at
  once (a code if the account already granted the scopes, else ``error=consent_required``).
- ``POST /o/oauth2/v2/auth`` is the consent form: sign-in (e-mail, and the password if the
  account has one), then Allow (``code``, ``scope``, ``state``, ``authuser``, ``prompt``,
  ``iss``) or Deny (``error=access_denied`` and ``state``). Calendar scopes can be unticked
  (granular consent); the granted ``scope`` then lacks them.
- ``POST /token``, ``POST /revoke``, ``GET|POST /v1/userinfo`` answer flat JSON errors.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from html import escape
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from aiohttp import web

from chronapilot.sandbox.google.emulator import EMULATOR, GoogleEmulator
from chronapilot.sandbox.google.errors import OAuthError, json_response
from chronapilot.sandbox.google.grants import CALENDAR, SCOPE_ALIASES, normalize_scopes
from chronapilot.sandbox.google.store import Account, OAuthClient
from chronapilot.sandbox.shared.consent import (
    DECISION_FIELD,
    GRANTED_SCOPE_FIELD,
    GRANULAR_FIELD,
    ConsentPage,
    ScopeChoice,
    render_consent_page,
)
from chronapilot.sandbox.shared.pkce import SUPPORTED_METHODS

routes = web.RouteTableDef()
AUTHORIZATION_PATH = "/o/oauth2/v2/auth"
_PASSED_THROUGH = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "access_type",
    "prompt",
    "include_granted_scopes",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "login_hint",
)
_SCOPE_TEXT = {
    "openid": "Associate you with your personal info on Google",
    SCOPE_ALIASES["email"]: "See your primary Google Account email address",
    SCOPE_ALIASES[
        "profile"
    ]: "See your personal info, including any personal info you've made publicly available",
    CALENDAR: "See, edit, share, and permanently delete all the calendars you can access",
    f"{CALENDAR}.readonly": "See and download any calendar you can access using your Google Calendar",
    f"{CALENDAR}.events": "View and edit events on all your calendars",
    f"{CALENDAR}.events.readonly": "View events on all your calendars",
    f"{CALENDAR}.calendarlist.readonly": "See the list of Google calendars you're subscribed to",
}


class _ErrorPage(Exception):
    """An authorization error shown to the user instead of redirecting."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail

    def response(self) -> web.Response:
        title = f"Error {self.status}: {escape(self.error)}"
        html = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><main><h1>Access blocked: authorization error</h1><p>{escape(self.detail)}</p>"
            f"<p><strong>{title}</strong></p></main></body></html>"
        )
        return web.Response(status=self.status, text=html, content_type="text/html")


def _redirect(redirect_uri: str, params: list[tuple[str, str]]) -> web.Response:
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return web.Response(status=302, headers={"Location": location})


def _checked_client(emulator: GoogleEmulator, params: Mapping[str, str]) -> tuple[OAuthClient, str]:
    client = emulator.authority.client(params.get("client_id"))
    if client is None:
        raise _ErrorPage(401, "invalid_client", "The OAuth client was not found.")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise _ErrorPage(400, "invalid_request", "Missing required parameter: redirect_uri")
    if not emulator.authority.redirect_allowed(client, redirect_uri):
        raise _ErrorPage(
            400, "redirect_uri_mismatch", "You can't sign in because this app sent an invalid request."
        )
    if not params.get("scope"):
        raise _ErrorPage(400, "invalid_request", "Missing required parameter: scope")
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method is not None and method not in SUPPORTED_METHODS:
        raise _ErrorPage(400, "invalid_request", "Invalid code_challenge_method value.")
    return client, redirect_uri


def _state(params: Mapping[str, str]) -> list[tuple[str, str]]:
    return [("state", params["state"])] if "state" in params else []


def _consent_page(
    client: OAuthClient, params: Mapping[str, str], email: str, error: str | None = None
) -> web.Response:
    scopes = normalize_scopes(params["scope"])
    page = ConsentPage(
        provider="Google",
        client_name=client.name,
        account_email=email,
        scopes=[
            ScopeChoice(scope, _SCOPE_TEXT.get(scope, scope), optional=scope.startswith(CALENDAR))
            for scope in scopes
        ],
        action=AUTHORIZATION_PATH,
        hidden_fields={name: params[name] for name in _PASSED_THROUGH if name in params},
        granular=True,
        error=error,
    )
    return web.Response(text=render_consent_page(page), content_type="text/html", status=200)


def _default_account(emulator: GoogleEmulator, params: Mapping[str, str]) -> Account | None:
    hint = params.get("login_hint")
    if hint:
        return emulator.store.account_by_email(hint)
    return next(iter(emulator.store.accounts.values()), None)


def _approve(
    emulator: GoogleEmulator,
    client: OAuthClient,
    account: Account,
    params: Mapping[str, str],
    scopes: list[str],
) -> web.Response:
    prompts = params.get("prompt", "").split()
    offline = params.get("access_type") == "offline"
    if params.get("include_granted_scopes") == "true":
        scopes = sorted(set(scopes) | _granted_scopes(emulator, client, account))
    code = emulator.authority.issue_code(
        client,
        account,
        redirect_uri=params["redirect_uri"],
        scopes=scopes,
        code_challenge=params.get("code_challenge"),
        code_challenge_method=params.get("code_challenge_method"),
        nonce=params.get("nonce"),
        issue_refresh_token=offline
        and ("consent" in prompts or not emulator.authority.has_refresh_token(account, client)),
    )
    answer = [
        *_state(params),
        ("code", code.code),
        ("scope", " ".join(scopes)),
        ("authuser", "0"),
        ("prompt", "consent" if "none" not in prompts else "none"),
        ("iss", emulator.issuer),
    ]
    return _redirect(params["redirect_uri"], answer)


@routes.get(AUTHORIZATION_PATH)
async def authorization_page(request: web.Request) -> web.Response:
    """Validate the authorization request and show the consent page."""
    emulator = request.app[EMULATOR]
    params = request.query
    try:
        client, redirect_uri = _checked_client(emulator, params)
    except _ErrorPage as page:
        return page.response()
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, [*_state(params), ("error", "unsupported_response_type")])
    account = _default_account(emulator, params)
    if "none" in params.get("prompt", "").split():
        return _answer_without_prompt(emulator, client, account, params)
    return _consent_page(client, params, account.email if account else params.get("login_hint", ""))


def _answer_without_prompt(
    emulator: GoogleEmulator, client: OAuthClient, account: Account | None, params: Mapping[str, str]
) -> web.Response:
    scopes = normalize_scopes(params["scope"])
    if account is None or not set(scopes) <= _granted_scopes(emulator, client, account):
        error = "login_required" if account is None else "consent_required"
        return _redirect(params["redirect_uri"], [*_state(params), ("error", error)])
    return _approve(emulator, client, account, params, scopes)


def _granted_scopes(emulator: GoogleEmulator, client: OAuthClient, account: Account) -> set[str]:
    """Scopes ``account`` has granted ``client`` and not revoked."""
    return {
        scope
        for grant in emulator.store.grants.values()
        if grant.account_sub == account.sub and grant.client_id == client.client_id and not grant.revoked
        for scope in grant.scopes
    }


@routes.post(AUTHORIZATION_PATH)
async def consent_decision(request: web.Request) -> web.Response:
    """The consent form was submitted: sign in, then redirect with a code or ``access_denied``."""
    emulator = request.app[EMULATOR]
    form = await request.post()
    params = {name: str(form[name]) for name in _PASSED_THROUGH if name in form}
    try:
        client, redirect_uri = _checked_client(emulator, params)
    except _ErrorPage as page:
        return page.response()
    if form.get(DECISION_FIELD) == "deny":
        return _redirect(redirect_uri, [("error", "access_denied"), *_state(params)])
    email = str(form.get("email", ""))
    account = emulator.store.account_by_email(email)
    if account is None:
        return _consent_page(client, params, email, error="Couldn't find your Google Account.")
    if account.password is not None and form.get("password") != account.password:
        return _consent_page(client, params, email, error="Wrong password. Try again.")
    requested = normalize_scopes(params["scope"])
    if form.get(GRANULAR_FIELD):
        ticked = {str(value) for value in form.getall(GRANTED_SCOPE_FIELD, [])}
        requested = [scope for scope in requested if not scope.startswith(CALENDAR) or scope in ticked]
    return _approve(emulator, client, account, params, requested)


def _client_credentials(request: web.Request, form: Mapping[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "Unauthorized") from None
        client_id, _, client_secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(client_secret)
    return form.get("client_id"), form.get("client_secret")


async def _form(request: web.Request) -> dict[str, str]:
    body = await request.post()
    merged = {key: str(value) for key, value in body.items()}
    return {**dict(request.query), **merged}


@routes.post("/token")
async def token(request: web.Request) -> web.Response:
    """The token endpoint: authorization_code and refresh_token grants."""
    authority = request.app[EMULATOR].authority
    try:
        form = await _form(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client = authority.authenticate_client(*_client_credentials(request, form))
        if grant_type == "authorization_code":
            body = authority.exchange_code(
                client, form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
            )
        else:
            body = authority.refresh(client, form.get("refresh_token"), form.get("scope"))
    except OAuthError as error:
        return error.response()
    response = json_response(body)
    response.headers["Cache-Control"] = "no-cache, no-store, max-age=0, must-revalidate"
    response.headers["Pragma"] = "no-cache"
    return response


@routes.post("/revoke")
async def revoke(request: web.Request) -> web.Response:
    """Revoke a refresh or access token (and with it the client's access)."""
    try:
        form = await _form(request)
        request.app[EMULATOR].authority.revoke(form.get("token"))
    except OAuthError as error:
        return error.response()
    return web.Response(status=200, body=b"", content_type="application/json")


@routes.get("/v1/userinfo")
@routes.post("/v1/userinfo")
async def userinfo(request: web.Request) -> web.Response:
    """The signed-in account's ``sub`` and ``email`` (with the ``email`` scope)."""
    header = request.headers.get("Authorization", "")
    bearer = None
    if header[:7].lower() == "bearer ":
        bearer = request.app[EMULATOR].authority.bearer(header[7:].strip())
    if bearer is None:
        response = json_response(
            {"error": "invalid_request", "error_description": "Invalid Credentials"}, status=401
        )
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        )
        return response
    account = bearer.account
    body: dict[str, object] = {"sub": account.sub}
    if SCOPE_ALIASES["profile"] in bearer.scopes:
        body.update(name=account.name, given_name=account.name.split()[0])
    if SCOPE_ALIASES["email"] in bearer.scopes:
        body.update(email=account.email, email_verified=True)
    return json_response(body)
