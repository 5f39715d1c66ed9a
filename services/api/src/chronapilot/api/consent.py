"""Consent: ``POST /v1/connections/start``, the OAuth callbacks and the hosted credential page.

A consent session (``oauth_states``) is created by ``start``: single use, ten minutes, with
the PKCE verifier (sealed), the customer's ``return_url`` and ``state``. The provider gets an
unguessable session ``state`` of ours; the callback consumes the session atomically, so a
replayed or forged callback finds nothing and gets an error page, never a connection.

A provider without OAuth (iCloud) has a ``password_sign_in``: its ``redirect_url`` is the hosted
page ``/connect/{provider}/{state}``, whose labels, help text and account check come from the
provider's :class:`~chronapilot.common.providers.base.PasswordForm`.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from authlib.common.security import generate_token

from chronapilot.api.activation import Grant, activate
from chronapilot.api.auth import current_application
from chronapilot.api.errors import ApiError
from chronapilot.api.requests import read_json
from chronapilot.api.schemas import ConnectionStartObject, StartConnectionBody, dump
from chronapilot.api.users import user_exists
from chronapilot.api.views import render_page
from chronapilot.common.errors import ProviderError
from chronapilot.common.ids import new_id
from chronapilot.common.logging import get_logger
from chronapilot.common.models import Application
from chronapilot.common.providers.base import AppPassword, OAuthGrant, PasswordForm, PasswordSignIn, TokenSet
from chronapilot.common.providers.errors import InvalidCredentials
from chronapilot.common.runtime import RUNTIME, Runtime
from chronapilot.common.store import Document
from chronapilot.common.tenancy import has_dot_segments

SESSION_TTL = timedelta(minutes=10)
MAX_PASSWORD_ATTEMPTS = 5
CSRF_COOKIE = "chronapilot_csrf"
DEFAULT_SCOPES = ("calendar.read", "calendar.write")
log = get_logger(__name__)


# -- start ------------------------------------------------------------------------------------


def check_return_url(url: str, application: Application) -> str:
    """Absolute https (http only for localhost), with no ``.``/``..`` path segment (plain or
    percent-encoded), under one of the application's prefixes."""
    parts = urlsplit(url)
    local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    problem = None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        problem = "must be an absolute https URL"
    elif parts.scheme == "http" and not local:
        problem = "must use https (http is allowed for localhost only)"
    elif parts.username or parts.password:
        problem = "must not carry credentials"
    elif parts.fragment:
        problem = "must not have a fragment"
    elif has_dot_segments(parts.path):
        problem = "must not contain '.' or '..' path segments (plain or percent-encoded)"
    elif not any(_under(parts, prefix) for prefix in application.return_url_prefixes):
        problem = "is not under any of your application's allowed return URL prefixes"
    if problem:
        raise ApiError(400, "parameter_invalid", f"return_url {problem}.", param="return_url")
    return url


def _under(url: Any, prefix: str) -> bool:
    allowed = urlsplit(prefix)
    if (url.scheme, url.hostname, url.port) != (allowed.scheme, allowed.hostname, allowed.port):
        return False
    base = allowed.path or "/"
    path = url.path or "/"
    return path == base.rstrip("/") or path.startswith(base if base.endswith("/") else base + "/")


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def callback_url(runtime: Runtime, provider: str) -> str:
    return f"{runtime.settings.api_base_url}/oauth/{provider}/callback"


async def start_connection(request: web.Request) -> web.Response:
    body = await read_json(request, StartConnectionBody)
    application = current_application(request)
    runtime = request.app[RUNTIME]
    provider = request.app[RUNTIME].providers.get(body.provider)
    if provider is None:
        raise ApiError(
            400,
            "provider_unavailable",
            f"{body.provider} is not configured on this ChronaPilot.",
            param="provider",
        )
    if not await user_exists(request, body.user_id):
        raise ApiError(404, "resource_missing", f"No such user: {body.user_id}.", param="user_id")
    check_return_url(body.return_url, application)
    now = runtime.clock.now()
    session_id = new_id("cst")
    state = secrets.token_urlsafe(32)
    verifier = generate_token(64)
    client_state = body.state if body.state is not None else secrets.token_urlsafe(16)
    scopes = list(body.scopes or DEFAULT_SCOPES)
    if provider.capabilities.oauth:
        redirect_url = provider.authorization_url(
            redirect_uri=callback_url(runtime, body.provider),
            state=state,
            code_verifier=verifier,
            scopes=scopes,
        )
    else:
        redirect_url = f"{runtime.settings.api_base_url}/connect/{body.provider}/{state}"
    await runtime.repos.oauth_states.create(
        {
            "_id": session_id,
            "state": state,
            "application_id": application.id,
            "user_id": body.user_id,
            "provider": body.provider,
            "return_url": body.return_url,
            "client_state": client_state,
            "scopes": scopes,
            "code_verifier": runtime.cipher.encrypt(verifier, associated_data=session_id),
            "csrf_token": secrets.token_urlsafe(32),
            "attempts": 0,
            "created_at": now,
            "expires_at": now + SESSION_TTL,
            "used_at": None,
        }
    )
    answer = ConnectionStartObject(
        redirect_url=redirect_url, state=client_state, expires_at=now + SESSION_TTL
    )
    return web.json_response(dump(answer), status=201)


# -- OAuth callback ---------------------------------------------------------------------------


async def _consume(runtime: Runtime, state: str, provider: str) -> Document | None:
    """Take the consent session for ``state``: once, and only while it is fresh."""
    if not state or len(state) > 200:
        return None
    now = runtime.clock.now()
    return await runtime.repos.oauth_states.consume(state, provider, now)


def _invalid_session_page() -> web.Response:
    return render_page(
        "error.html",
        status=400,
        title="This sign-in link can't be used",
        message="It has expired, was already used, or is not one of ours.",
    )


def _back(session: Document, **params: str) -> web.Response:
    url = with_params(session["return_url"], {**params, "state": session["client_state"]})
    raise web.HTTPFound(url)


async def oauth_callback(request: web.Request) -> web.Response:
    provider_name = request.match_info["provider"]
    runtime = request.app[RUNTIME]
    provider = request.app[RUNTIME].providers.get(provider_name)
    if provider is None or not provider.capabilities.oauth:
        return _invalid_session_page()
    session = await _consume(runtime, request.query.get("state", ""), provider_name)
    if session is None:
        log.warning("consent.callback_rejected", provider=provider_name)
        return _invalid_session_page()
    error = request.query.get("error")
    if error:
        kind = "access_denied" if error == "access_denied" else "provider_error"
        description = request.query.get("error_description") or (
            "The user declined access." if kind == "access_denied" else f"Provider error: {error}"
        )
        return _back(session, error=kind, error_description=description[:300])
    code = request.query.get("code", "")
    if not code:
        return _back(session, error="provider_error", error_description="No code was returned.")
    verifier = runtime.cipher.decrypt(session["code_verifier"], associated_data=session["_id"])
    try:
        tokens = await provider.exchange_code(
            code=code, redirect_uri=callback_url(runtime, provider_name), code_verifier=verifier
        )
        missing = set(session["scopes"]) - set(provider.granted_scopes(tokens))
        if missing:
            return _back(
                session,
                error="access_denied",
                error_description=f"Calendar access was not granted ({', '.join(sorted(missing))}).",
            )
        token_source = _static_token(tokens)
        account = await provider.account(token_source)
        calendars = await provider.list_calendars(token_source)
    except ProviderError as exc:
        log.warning("consent.exchange_failed", provider=provider_name, error_code=exc.code, status=exc.status)
        return _back(
            session, error="provider_error", error_description="The provider refused to complete the sign-in."
        )
    connection = await activate(
        runtime,
        application_id=session["application_id"],
        user_id=session["user_id"],
        grant=Grant(provider_name, account, calendars, OAuthGrant(tokens)),
    )
    log.info("consent.completed", provider=provider_name, connection_id=connection["_id"])
    return _back(session, connection_id=connection["_id"])


def _static_token(tokens: TokenSet) -> Any:
    async def token(force_refresh: bool) -> str:
        return tokens.access_token

    return token


# -- hosted credential page (password providers: iCloud) ---------------------------------------


def _sign_in(request: web.Request, provider: str) -> PasswordSignIn:
    sign_in: PasswordSignIn | None = request.app[RUNTIME].providers[provider].password_sign_in
    assert sign_in is not None, "a credential page session is for a provider with password_sign_in"
    return sign_in


def _an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


async def _open_session(request: web.Request) -> Document | None:
    runtime = request.app[RUNTIME]
    provider = request.match_info["provider"]
    found = await runtime.repos.oauth_states.find_open(
        request.match_info["state"], provider, runtime.clock.now()
    )
    if found is None or request.app[RUNTIME].providers[provider].password_sign_in is None:
        return None
    return found


def _form(
    request: web.Request, session: Document, *, error: str | None = None, email: str = "", status: int = 200
) -> web.Response:
    left = MAX_PASSWORD_ATTEMPTS - session.get("attempts", 0)
    form = _sign_in(request, session["provider"]).form
    response = render_page(
        "credentials.html",
        status=status,
        form=form,
        article=_an(form.password_term),
        action=request.path,
        csrf_token=session["csrf_token"],
        error=error,
        email=email,
        attempts_left=left if session.get("attempts") else None,
    )
    response.set_cookie(
        CSRF_COOKIE,
        session["csrf_token"],
        httponly=True,
        samesite="Strict",
        path="/connect/",
        max_age=int(SESSION_TTL.total_seconds()),
        secure=request.app[RUNTIME].settings.api_base_url.startswith("https"),
    )
    return response


def _credentials_problem(labels: PasswordForm, account: str, password: str) -> str | None:
    """What is wrong with the form's values before anything is tried, for the page; None if
    they can be tried. An account id cannot hold a ``:`` (it separates the name from the
    password in HTTP Basic credentials), spaces or control characters."""
    if not account or (labels.account_is_email and "@" not in account) or not password:
        return f"Enter your {labels.account_label} and {_an(labels.password_term)} {labels.password_term}."
    article = _an(labels.account_label).capitalize()
    if ":" in account:
        return f"{article} {labels.account_label} can't contain a colon (:). Check it and try again."
    if any(char.isspace() or not char.isprintable() for char in account):
        return f"{article} {labels.account_label} can't contain spaces. Check it and try again."
    return None


async def credential_page(request: web.Request) -> web.Response:
    session = await _open_session(request)
    if session is None:
        return _invalid_session_page()
    return _form(request, session)


async def submit_credentials(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    session = await _open_session(request)
    if session is None:
        return _invalid_session_page()
    form = await request.post()
    token = str(form.get("csrf_token", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = session["csrf_token"]
    if not (hmac.compare_digest(token, expected) and hmac.compare_digest(cookie, expected)):
        return render_page(
            "error.html",
            status=403,
            title="Please try again",
            message="This form expired or was not sent from this page.",
        )
    email = str(form.get("email", "")).strip()[:320]
    password = str(form.get("password", "")).strip()
    sign_in = _sign_in(request, session["provider"])
    labels = sign_in.form
    problem = _credentials_problem(labels, email, password)
    if problem is not None:  # refused before an attempt is counted: nothing was tried
        return _form(request, session, email=email, status=400, error=problem)
    counted = await runtime.repos.oauth_states.count_attempt(
        session["_id"], max_attempts=MAX_PASSWORD_ATTEMPTS
    )
    if counted is None:
        return _invalid_session_page()
    provider_name = session["provider"]
    credential = AppPassword(email, password)
    try:
        account, calendars = await sign_in.verify(credential)
    except InvalidCredentials:
        if counted["attempts"] >= MAX_PASSWORD_ATTEMPTS:
            consumed = await _consume(runtime, session["state"], provider_name)
            if consumed is not None:
                return _back(consumed, error="access_denied", error_description="Too many wrong passwords.")
            return _invalid_session_page()
        return _form(
            request,
            counted,
            email=email,
            status=401,
            error=f"That {labels.account_label} and {labels.password_term} don't match. "
            "Check both and try again.",
        )
    except ProviderError as exc:
        log.warning(
            "consent.password_check_unavailable",
            provider=provider_name,
            error_code=exc.code,
            status=exc.status,
        )
        return _form(
            request,
            counted,
            email=email,
            status=503,
            error=f"{labels.provider_label} could not be reached just now. Please try again in a minute.",
        )
    consumed = await _consume(runtime, session["state"], provider_name)
    if consumed is None:
        return _invalid_session_page()
    connection = await activate(
        runtime,
        application_id=session["application_id"],
        user_id=session["user_id"],
        grant=Grant(provider_name, account, calendars, credential, scopes=tuple(session["scopes"])),
    )
    log.info("consent.completed", provider=provider_name, connection_id=connection["_id"])
    url = with_params(
        consumed["return_url"], {"connection_id": connection["_id"], "state": consumed["client_state"]}
    )
    raise web.HTTPSeeOther(url)
