"""Google emulator, OAuth 2.0 and OpenID Connect, driven by authlib's client and a scripted browser."""

from __future__ import annotations

import time

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.jose import JsonWebKey, jwt
from google_harness import GOOGLE_REDIRECT_URI, GoogleSandbox

from chronapilot.sandbox.google import DEMO_EMAIL, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from chronapilot.sandbox.shared.consent import read_consent_form

CALENDAR = "https://www.googleapis.com/auth/calendar"
VERIFIER = "a-sufficiently-long-pkce-code-verifier-0123456789abcdef"


async def authorize(google: GoogleSandbox, **params: str) -> tuple[str, str]:
    """The authorization URL (with PKCE S256) and its state."""
    async with google.oauth_client() as client:
        url, state = client.create_authorization_url(
            f"{google.base_url}/o/oauth2/v2/auth", code_verifier=VERIFIER, access_type="offline", **params
        )
    return url, state


async def token_request(google: GoogleSandbox, form: dict[str, str], **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{google.base_url}/token", data=form, **kwargs)


def code_form(code: str, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": GOOGLE_REDIRECT_URI,
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "code_verifier": VERIFIER,
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value != ""}


async def test_discovery_document_lists_the_emulators_own_endpoints(google: GoogleSandbox) -> None:
    async with google.http.get(f"{google.base_url}/.well-known/openid-configuration") as response:
        document = await response.json()
    assert document["issuer"] == google.base_url
    assert document["authorization_endpoint"] == f"{google.base_url}/o/oauth2/v2/auth"
    assert document["token_endpoint"] == f"{google.base_url}/token"
    assert document["revocation_endpoint"] == f"{google.base_url}/revoke"
    assert document["userinfo_endpoint"] == f"{google.base_url}/v1/userinfo"
    assert "S256" in document["code_challenge_methods_supported"]


async def test_code_flow_with_pkce_yields_tokens_and_userinfo(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3599
    assert token["access_token"].startswith("ya29.")
    assert token["refresh_token"].startswith("1//")
    assert token["scope"].split() == sorted(
        ["openid", CALENDAR, "https://www.googleapis.com/auth/userinfo.email"]
    )
    async with google.oauth_client(token=token) as client:
        info = (await client.get(f"{google.base_url}/v1/userinfo")).json()
    account = google.emulator.store.account_by_email(DEMO_EMAIL)
    assert account is not None
    assert info == {"sub": account.sub, "email": DEMO_EMAIL, "email_verified": True}


async def test_id_token_is_signed_by_the_published_keys(google: GoogleSandbox) -> None:
    token = await google.sign_in(nonce="n-0S6_WzA2Mj")
    async with google.http.get(f"{google.base_url}/oauth2/v3/certs") as response:
        keys = JsonWebKey.import_key_set(await response.json())
    claims = jwt.decode(token["id_token"], keys)
    claims.validate()
    assert claims["iss"] == google.base_url
    assert claims["aud"] == SANDBOX_CLIENT_ID
    assert claims["email"] == DEMO_EMAIL
    assert claims["nonce"] == "n-0S6_WzA2Mj"


async def test_allow_redirects_with_code_scope_and_state(google: GoogleSandbox) -> None:
    url, state = await authorize(google)
    answer = await google.consent(url)
    assert answer["state"] == state
    assert answer["code"]
    assert CALENDAR in answer["scope"].split()


async def test_deny_redirects_with_access_denied_and_state(google: GoogleSandbox) -> None:
    url, state = await authorize(google)
    answer = await google.consent(url, decision="deny")
    assert answer == {"error": "access_denied", "state": state}


async def test_consent_page_is_an_accessible_form_with_account_scopes_and_both_buttons(
    google: GoogleSandbox,
) -> None:
    url, _ = await authorize(google)
    async with google.http.get(url) as page:
        html = await page.text()
    assert page.headers["Content-Type"].startswith("text/html")
    assert DEMO_EMAIL in html
    assert CALENDAR in html
    assert '<label for="email">' in html and '<label for="password">' in html
    assert "<script" not in html
    form = read_consent_form(html)
    assert ("decision", "allow") in form.buttons and ("decision", "deny") in form.buttons


async def test_a_wrong_password_shows_the_page_again(google: GoogleSandbox) -> None:
    url, _ = await authorize(google)
    async with google.http.get(url) as page:
        form = read_consent_form(await page.text())
    body = form.submission("allow", password="not-the-password")
    async with google.http.post(
        f"{google.base_url}{form.action}", data=body, allow_redirects=False
    ) as answer:
        assert answer.status == 200
        assert "Wrong password" in await answer.text()


async def test_unticking_the_calendar_scope_grants_less_and_the_api_refuses(google: GoogleSandbox) -> None:
    url, _ = await authorize(google)
    answer = await google.consent(url, untick=(CALENDAR,))
    assert CALENDAR not in answer["scope"].split()
    async with google.oauth_client() as client:
        token = await client.fetch_token(
            f"{google.base_url}/token", code=answer["code"], code_verifier=VERIFIER
        )
    listed = await google.api("GET", "/users/me/calendarList", token["access_token"])
    assert listed.status == 403
    assert listed.body["error"]["errors"][0]["reason"] == "insufficientPermissions"


async def test_unknown_client_and_unregistered_redirect_are_shown_as_errors_not_redirected(
    google: GoogleSandbox,
) -> None:
    url, _ = await authorize(google)
    bad_client = url.replace(f"client_id={SANDBOX_CLIENT_ID}", "client_id=nobody")
    async with google.http.get(bad_client, allow_redirects=False) as page:
        assert page.status == 401
        assert "invalid_client" in await page.text()
    bad_redirect = url.replace("127.0.0.1%3A9", "evil.example")
    async with google.http.get(bad_redirect, allow_redirects=False) as page:
        assert page.status == 400
        assert "redirect_uri_mismatch" in await page.text()


async def test_prompt_none_without_an_earlier_grant_answers_consent_required(google: GoogleSandbox) -> None:
    url, state = await authorize(google, prompt="none")
    async with google.http.get(url, allow_redirects=False) as answer:
        assert answer.status == 302
        assert "error=consent_required" in answer.headers["Location"]
        assert f"state={state}" in answer.headers["Location"]


async def test_a_code_works_once(google: GoogleSandbox) -> None:
    url, _ = await authorize(google)
    code = (await google.consent(url))["code"]
    assert (await token_request(google, code_form(code))).status_code == 200
    reused = await token_request(google, code_form(code))
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_an_expired_code_is_an_invalid_grant(google: GoogleSandbox) -> None:
    url, _ = await authorize(google)
    code = (await google.consent(url))["code"]
    await google.admin("POST", "clock/advance", {"seconds": 601})
    answer = await token_request(google, code_form(code))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Bad Request"}


@pytest.mark.parametrize(
    ("verifier", "description"),
    [("", "Missing code verifier."), ("x" * 50, "Invalid code verifier.")],
)
async def test_pkce_verifier_missing_or_wrong_is_an_invalid_grant(
    google: GoogleSandbox, verifier: str, description: str
) -> None:
    url, _ = await authorize(google)
    code = (await google.consent(url))["code"]
    answer = await token_request(google, code_form(code, code_verifier=verifier))
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": description}


async def test_redirect_uri_must_be_registered_and_match_the_codes(google: GoogleSandbox) -> None:
    url, _ = await authorize(google)
    code = (await google.consent(url))["code"]
    unregistered = await token_request(google, code_form(code, redirect_uri="https://evil.example/cb"))
    assert unregistered.status_code == 400
    assert unregistered.json() == {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
    other = await token_request(google, code_form(code, redirect_uri="http://127.0.0.1:9/other"))
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"


async def test_client_authentication_failures_are_401_invalid_client(google: GoogleSandbox) -> None:
    url, _ = await authorize(google)
    code = (await google.consent(url))["code"]
    unknown = await token_request(google, code_form(code, client_id="nobody"))
    assert unknown.status_code == 401
    assert unknown.json() == {
        "error": "invalid_client",
        "error_description": "The OAuth client was not found.",
    }
    wrong = await token_request(google, code_form(code, client_secret="wrong"))
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client", "error_description": "Unauthorized"}


async def test_missing_parameters_and_unknown_grant_types(google: GoogleSandbox) -> None:
    missing = await token_request(google, code_form(""))
    assert missing.json() == {
        "error": "invalid_request",
        "error_description": "Missing required parameter: code",
    }
    unknown = await token_request(google, code_form("c", grant_type="password"))
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "unsupported_grant_type",
        "error_description": "Invalid grant_type: password",
    }


async def test_refresh_gives_a_new_access_token_and_keeps_the_refresh_token(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    async with google.oauth_client() as client:
        refreshed = await client.refresh_token(
            f"{google.base_url}/token", refresh_token=token["refresh_token"]
        )
        again = await client.refresh_token(f"{google.base_url}/token", refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert again["access_token"] != refreshed["access_token"]
    assert (
        "refresh_token" not in refreshed.get("_raw", refreshed)
        or refreshed["refresh_token"] == token["refresh_token"]
    )
    listed = await google.api("GET", "/users/me/calendarList", refreshed["access_token"])
    assert listed.status == 200


async def test_refresh_response_has_no_refresh_token(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    answer = await token_request(
        google,
        {
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert answer.status_code == 200
    assert "refresh_token" not in answer.json()
    assert answer.json()["expires_in"] == 3599


async def test_revoking_the_refresh_token_ends_the_grant(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    async with google.oauth_client() as client:
        revoked = await client.revoke_token(f"{google.base_url}/revoke", token=token["refresh_token"])
        assert revoked.status_code == 200
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(f"{google.base_url}/token", refresh_token=token["refresh_token"])
        assert refused.value.error == "invalid_grant"
        assert refused.value.description == "Token has been expired or revoked."
        again = await client.revoke_token(f"{google.base_url}/revoke", token=token["refresh_token"])
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_token", "error_description": "Token expired or revoked"}
    listed = await google.api("GET", "/users/me/calendarList", token["access_token"])
    assert listed.status == 401


async def test_the_user_removing_access_makes_refresh_fail(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    assert (await google.admin("POST", "grants/revoke", {"email": DEMO_EMAIL}))["revoked"] >= 1
    async with google.oauth_client() as client:
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(f"{google.base_url}/token", refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"


async def test_without_offline_access_or_on_a_second_consent_no_refresh_token(google: GoogleSandbox) -> None:
    online = await google.sign_in(access_type="online")
    assert "refresh_token" not in online
    first = await google.sign_in()
    assert "refresh_token" in first
    second = await google.sign_in()
    assert "refresh_token" not in second
    forced = await google.sign_in(prompt="consent")
    assert forced["refresh_token"] != first["refresh_token"]


async def test_access_tokens_expire_after_their_lifetime(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    assert (await google.api("GET", "/users/me/calendarList", token["access_token"])).status == 200
    await google.admin("POST", "clock/advance", {"seconds": 3600})
    expired = await google.api("GET", "/users/me/calendarList", token["access_token"])
    assert expired.status == 401
    assert expired.body["error"]["errors"][0]["reason"] == "authError"
    async with google.oauth_client() as client:
        refreshed = await client.refresh_token(
            f"{google.base_url}/token", refresh_token=token["refresh_token"]
        )
    assert (await google.api("GET", "/users/me/calendarList", refreshed["access_token"])).status == 200


async def test_admin_can_expire_one_access_token(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    answer = await google.admin("POST", "tokens/expire", {"access_token": token["access_token"]})
    assert answer == {"expired": 1}
    assert (await google.api("GET", "/users/me/calendarList", token["access_token"])).status == 401


async def test_userinfo_refuses_an_unknown_token(google: GoogleSandbox) -> None:
    async with google.http.get(
        f"{google.base_url}/v1/userinfo", headers={"Authorization": "Bearer ya29.nope"}
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_request"
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_an_expired_refresh_token_is_an_invalid_grant(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    body = {"kind": "refresh", "refresh_token": token["refresh_token"]}
    assert await google.admin("POST", "tokens/expire", body) == {"expired": 1}
    async with google.oauth_client() as client:
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(f"{google.base_url}/token", refresh_token=token["refresh_token"])
    assert (refused.value.error, refused.value.description) == (
        "invalid_grant",
        "Token has been expired or revoked.",
    )


async def test_the_101st_refresh_token_silently_invalidates_the_oldest(google: GoogleSandbox) -> None:
    form = {
        "client_id": SANDBOX_CLIENT_ID,
        "redirect_uri": GOOGLE_REDIRECT_URI,
        "response_type": "code",
        "scope": CALENDAR,
        "access_type": "offline",
        "prompt": "consent",
        "email": DEMO_EMAIL,
        "password": "sandbox-demo",
        "decision": "allow",
    }
    refresh_tokens = []
    async with httpx.AsyncClient() as http:
        for _ in range(101):
            consent = await http.post(f"{google.base_url}/o/oauth2/v2/auth", data=form)
            code = httpx.URL(consent.headers["Location"]).params["code"]
            exchange = {**code_form(code), "code_verifier": ""}
            answer = await http.post(
                f"{google.base_url}/token", data={k: v for k, v in exchange.items() if v}
            )
            refresh_tokens.append(answer.json()["refresh_token"])
        refresh = {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        }
        oldest = await http.post(
            f"{google.base_url}/token", data={**refresh, "refresh_token": refresh_tokens[0]}
        )
        second = await http.post(
            f"{google.base_url}/token", data={**refresh, "refresh_token": refresh_tokens[1]}
        )
    assert oldest.status_code == 400 and oldest.json()["error"] == "invalid_grant"
    assert second.status_code == 200


async def test_a_latency_fault_delays_the_answer(google: GoogleSandbox, google_token: str) -> None:
    await google.admin(
        "POST", "faults", {"route": "/calendar/v3/users/me/calendarList", "latency_ms": 60, "times": 1}
    )
    started = time.perf_counter()
    answer = await google.api("GET", "/users/me/calendarList", google_token)
    assert answer.status == 200 and time.perf_counter() - started >= 0.05


async def test_include_granted_scopes_adds_earlier_grants(google: GoogleSandbox) -> None:
    await google.sign_in()
    url, _ = await authorize(google, include_granted_scopes="true")
    narrow = url.replace(
        "scope=openid+email+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcalendar", "scope=openid"
    )
    assert narrow != url
    answer = await google.consent(narrow)
    assert CALENDAR in answer["scope"].split()


async def test_refresh_can_ask_for_fewer_scopes_but_not_more(google: GoogleSandbox) -> None:
    token = await google.sign_in()
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
    }
    narrower = await token_request(google, {**refresh, "scope": "openid email"})
    assert narrower.status_code == 200
    assert narrower.json()["scope"].split() == ["https://www.googleapis.com/auth/userinfo.email", "openid"]
    refused = await google.api("GET", "/users/me/calendarList", narrower.json()["access_token"])
    assert refused.status == 403
    wider = await token_request(google, {**refresh, "scope": "https://www.googleapis.com/auth/drive"})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


async def test_a_verifier_for_a_code_issued_without_pkce_is_refused(google: GoogleSandbox) -> None:
    async with google.oauth_client(code_challenge_method=None) as client:
        url, _ = client.create_authorization_url(f"{google.base_url}/o/oauth2/v2/auth", access_type="offline")
    assert "code_challenge" not in url
    code = (await google.consent(url))["code"]
    answer = await token_request(google, code_form(code))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier or verifier is not needed.",
    }
    without = await token_request(google, code_form(code, code_verifier=""))
    assert without.status_code == 200
