"""Token endpoint refusals of the Microsoft emulator: every AADSTS error path, with its body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_microsoft_harness import (
    Emulator,
    assert_aadsts,
    authorization_code,
    code_form,
    refresh_form,
    running_emulator,
    token_error,
)

from chronapilot.sandbox.microsoft.seed import DEMO_EMAIL, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with running_emulator() as emu:
        yield emu


async def test_a_redeemed_code_cannot_be_redeemed_again(emulator: Emulator) -> None:
    code, verifier = await authorization_code(emulator)
    status, _ = await token_error(emulator, code_form(code, verifier))
    assert status == 200
    status, body = await token_error(emulator, code_form(code, verifier))
    assert status == 400
    assert_aadsts(body, "invalid_grant", 54005)


async def test_an_expired_code_is_refused(emulator: Emulator) -> None:
    code, verifier = await authorization_code(emulator)
    await emulator.admin("POST", "tokens/expire", {"kind": "code"})
    status, body = await token_error(emulator, code_form(code, verifier))
    assert status == 400
    assert_aadsts(body, "invalid_grant", 70008)


async def test_a_wrong_code_verifier_is_refused(emulator: Emulator) -> None:
    code, _ = await authorization_code(emulator)
    status, body = await token_error(emulator, code_form(code, "x" * 50))
    assert status == 400
    assert_aadsts(body, "invalid_grant", 501481)


async def test_a_different_redirect_uri_is_refused(emulator: Emulator) -> None:
    code, verifier = await authorization_code(emulator)
    status, body = await token_error(emulator, code_form(code, verifier, "http://127.0.0.1:9/other"))
    assert status == 400
    assert_aadsts(body, "invalid_grant", 500112)


async def test_a_code_must_be_redeemed_at_its_tenant(emulator: Emulator) -> None:
    code, verifier = await authorization_code(emulator)
    status, body = await token_error(emulator, code_form(code, verifier), tenant="organizations")
    assert status == 400
    assert_aadsts(body, "invalid_grant", 700005)


async def test_a_wrong_client_secret_is_invalid_client(emulator: Emulator) -> None:
    code, verifier = await authorization_code(emulator)
    form = {**code_form(code, verifier), "client_secret": "nope"}
    status, body = await token_error(emulator, form)
    assert status == 401
    assert_aadsts(body, "invalid_client", 7000215)


async def test_a_revoked_grant_refuses_refresh_and_graph(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    result = await emulator.admin("POST", "grants/revoke", {"user": DEMO_EMAIL})
    assert result["revoked"] >= 1
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": token["refresh_token"],
        },
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 50173)
    status, _, _ = await emulator.graph("GET", "/me", token["access_token"])
    assert status == 401


async def test_an_expired_refresh_token_is_refused(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    await emulator.admin("POST", "tokens/expire", {"kind": "refresh", "user": DEMO_EMAIL})
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": token["refresh_token"],
        },
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 700082)


async def test_unsupported_grant_type_and_missing_parameters(emulator: Emulator) -> None:
    status, body = await token_error(emulator, {"grant_type": "password", "client_id": SANDBOX_CLIENT_ID})
    assert status == 400
    assert_aadsts(body, "unsupported_grant_type", 70003)
    status, body = await token_error(emulator, {"client_id": SANDBOX_CLIENT_ID})
    assert status == 400
    assert_aadsts(body, "invalid_request", 900144)


async def test_refresh_for_scopes_never_consented_is_consent_required(emulator: Emulator) -> None:
    token = await emulator.sign_in(scope="offline_access openid User.Read Calendars.Read")
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": token["refresh_token"],
            "scope": "https://graph.microsoft.com/Calendars.ReadWrite offline_access",
        },
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": token["refresh_token"],
            "scope": "Calendars.Read offline_access",
        },
    )
    assert status == 200, body  # a refused refresh does not use the refresh token up


async def test_an_unknown_refresh_token_is_invalid_grant(emulator: Emulator) -> None:
    status, body = await token_error(
        emulator,
        {
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": "1.AVEA-never-issued",
        },
    )
    assert status == 400
    assert_aadsts(body, "invalid_grant", 70000)


async def test_an_expired_client_secret_is_invalid_client_7000222(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    await emulator.admin("PATCH", f"apps/{SANDBOX_CLIENT_ID}", {"secret_expired": True})
    status, body = await token_error(emulator, refresh_form(token["refresh_token"]))
    assert status == 401
    assert_aadsts(body, "invalid_client", 7000222)


async def test_mfa_required_until_the_user_signs_in_again(emulator: Emulator) -> None:
    token = await emulator.sign_in()
    await emulator.admin("POST", f"users/{DEMO_EMAIL}/require-interaction", {"code": 50076})
    status, body = await token_error(emulator, refresh_form(token["refresh_token"]))
    assert status == 400
    assert_aadsts(body, "invalid_grant", 50076)
    assert body["suberror"] == "basic_action"
    again = await emulator.sign_in()
    status, _ = await token_error(emulator, refresh_form(again["refresh_token"]))
    assert status == 200
