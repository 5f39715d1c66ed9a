"""Identity platform v2 of the Microsoft emulator, driven by authlib like a web app would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.jose import jwt
from test_microsoft_harness import (
    REDIRECT_URI,
    Emulator,
    assert_aadsts,
    running_emulator,
    token_error,
)

from chronapilot.sandbox.microsoft.seed import DEMO_EMAIL, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


async def test_code_flow_with_pkce_issues_tokens_and_an_id_token(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["ext_expires_in"] == 3600
    assert token["refresh_token"].startswith("1.")
    assert set(token["scope"].split()) == {"openid", "email", "User.Read", "Calendars.ReadWrite"}
    claims = jwt.decode(token["id_token"], SANDBOX_CLIENT_SECRET.encode())
    claims.validate()
    assert claims["aud"] == SANDBOX_CLIENT_ID
    assert claims["preferred_username"] == DEMO_EMAIL
    status, me, _ = await emulator.graph("GET", "/me", token["access_token"])
    assert status == 200
    assert me["mail"] == DEMO_EMAIL
    assert me["userPrincipalName"] == DEMO_EMAIL
    assert me["id"] == claims["oid"]
    assert me["displayName"] == "Demo Microsoft"


async def test_deny_redirects_with_access_denied_and_state(emulator: Emulator) -> None:
    async with emulator.oauth_client() as client:
        location, _ = await emulator.consent(client, "deny")
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT_URI)
    assert query["error"] == ["access_denied"]
    assert query["error_description"][0].startswith("AADSTS65004:")
    assert query["state"][0]
    assert "code" not in query


async def test_consent_page_shows_the_account_and_the_scopes(emulator: Emulator) -> None:
    async with emulator.oauth_client() as client:
        url, _ = client.create_authorization_url(
            f"{emulator.base_url}/common/oauth2/v2.0/authorize", code_verifier="v" * 48
        )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
    assert page.status_code == 200
    assert DEMO_EMAIL in page.text
    assert "Calendars.ReadWrite" in page.text
    assert 'value="allow"' in page.text
    assert 'value="deny"' in page.text


async def test_wrong_password_shows_the_page_again(emulator: Emulator) -> None:
    async with emulator.oauth_client() as client:
        url, _ = client.create_authorization_url(f"{emulator.base_url}/common/oauth2/v2.0/authorize")
        from chronapilot.sandbox.shared.consent import read_consent_form

        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            form = read_consent_form(page.text)
            answer = await browser.post(
                str(httpx.URL(url).join(form.action)),
                data=dict(form.submission("allow", password="wrong")),
            )
    assert answer.status_code == 200
    assert "AADSTS50126" in answer.text


async def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(emulator: Emulator) -> None:
    url = (
        f"{emulator.base_url}/common/oauth2/v2.0/authorize?client_id={SANDBOX_CLIENT_ID}"
        "&response_type=code&redirect_uri=https://evil.example/cb&scope=openid"
    )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
    assert page.status_code == 400
    assert "AADSTS50011" in page.text


async def test_refresh_rotates_and_the_old_refresh_token_is_rejected(emulator: Emulator) -> None:
    first = await emulator.sign_in()
    async with emulator.oauth_client(token=first) as client:
        second = await client.refresh_token(
            f"{emulator.base_url}/common/oauth2/v2.0/token", refresh_token=first["refresh_token"]
        )
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(
                f"{emulator.base_url}/common/oauth2/v2.0/token", refresh_token=first["refresh_token"]
            )
        assert refused.value.error == "invalid_grant"
        third = await client.refresh_token(
            f"{emulator.base_url}/common/oauth2/v2.0/token", refresh_token=second["refresh_token"]
        )
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": second["refresh_token"],
        },
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 70000)


async def test_expired_unknown_and_missing_access_tokens_get_401(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    await emulator.admin("POST", "tokens/expire", {"kind": "access"})
    status, body, headers = await emulator.graph("GET", "/me", token["access_token"])
    assert status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"
    assert body["error"]["message"] == "Access token has expired or is not yet valid."
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    status, body, _ = await emulator.graph("GET", "/me", "")
    assert status == 401
    assert body["error"]["message"] == "Access token is empty."
    status, body, _ = await emulator.graph("GET", "/me", "eyJ.unknown.token")
    assert status == 401
    counters = await emulator.admin("GET", "counters")
    assert counters["unauthorized"] == 3


async def test_access_tokens_expire_after_the_configured_lifetime() -> None:
    async with running_emulator(access_token_ttl=60) as emu:
        token = await emu.sign_in()
        assert token["expires_in"] == 60
        await emu.admin("POST", "clock/advance", {"seconds": 61})
        status, _, _ = await emu.graph("GET", "/me", token["access_token"])
        assert status == 401


async def test_discovery_lists_the_emulators_own_endpoints(emulator: Emulator) -> None:
    async with httpx.AsyncClient() as client:
        doc = (await client.get(f"{emulator.base_url}/common/v2.0/.well-known/openid-configuration")).json()
    assert doc["authorization_endpoint"] == f"{emulator.base_url}/common/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{emulator.base_url}/common/oauth2/v2.0/token"
    assert "S256" in doc["code_challenge_methods_supported"]


async def test_an_injected_fault_on_the_token_endpoint_has_the_identity_shape(emulator: Emulator) -> None:
    await emulator.admin(
        "POST",
        "faults",
        {"route": "/{tenant}/oauth2/v2.0/token", "status": 503, "retry_after": 3, "times": 1},
    )
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}/common/oauth2/v2.0/token", data={})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"] == "temporarily_unavailable"


async def test_prompt_none_answers_login_required(emulator: Emulator) -> None:
    url = (
        f"{emulator.base_url}/common/oauth2/v2.0/authorize?client_id={SANDBOX_CLIENT_ID}"
        f"&response_type=code&redirect_uri={REDIRECT_URI}&scope=openid&state=s1&prompt=none"
    )
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["login_required"]
    assert query["state"] == ["s1"]


async def test_form_post_response_mode_posts_the_code_back(emulator: Emulator) -> None:
    from chronapilot.sandbox.shared.consent import read_consent_form

    url = (
        f"{emulator.base_url}/common/oauth2/v2.0/authorize?client_id={SANDBOX_CLIENT_ID}"
        f"&response_type=code&redirect_uri={REDIRECT_URI}&scope=openid&state=s2&response_mode=form_post"
    )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        form = read_consent_form(page.text)
        answer = await browser.post(
            str(httpx.URL(url).join(form.action)),
            data=dict(form.submission("allow", password="demo-password")),
        )
    assert answer.status_code == 200
    posted = read_consent_form(answer.text)
    assert posted.action == REDIRECT_URI
    fields = dict(posted.fields)
    assert fields["state"] == "s2" and fields["code"]


async def test_a_refresh_for_fewer_scopes_narrows_the_access_token(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": token["refresh_token"],
            "scope": "offline_access https://graph.microsoft.com/User.Read",
        },
    )
    assert status == 200
    assert "Calendars.ReadWrite" not in body["scope"].split()
    assert "User.Read" in body["scope"].split()
    status, _, _ = await emulator.graph("GET", "/me/calendars", body["access_token"])
    assert status == 403


def test_the_default_apps_wildcard_redirect_uris_stay_on_loopback() -> None:
    from chronapilot.sandbox.microsoft.identity import redirect_allowed
    from chronapilot.sandbox.microsoft.seed import DEFAULT_REDIRECT_URIS

    assert redirect_allowed(DEFAULT_REDIRECT_URIS, "http://127.0.0.1:8080/v1/callback")
    assert redirect_allowed(DEFAULT_REDIRECT_URIS, "http://localhost:43111/cb")
    assert not redirect_allowed(DEFAULT_REDIRECT_URIS, "http://127.0.0.1:80@evil.example/cb")
    assert not redirect_allowed(DEFAULT_REDIRECT_URIS, "https://evil.example/cb")
    assert not redirect_allowed(["http://127.0.0.1:9/callback"], "http://127.0.0.1:9/callback/x")
