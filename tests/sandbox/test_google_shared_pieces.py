"""The shared emulator pieces as the Google emulator uses them: PKCE, consent page, faults, state file."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from google_harness import GoogleSandbox

from chronapilot.sandbox.shared.consent import (
    ConsentPage,
    ScopeChoice,
    read_consent_form,
    render_consent_page,
)
from chronapilot.sandbox.shared.faults import FaultRegistry, InvalidFault, NotificationFault, RouteFault
from chronapilot.sandbox.shared.pkce import s256_challenge, verify_code_verifier
from chronapilot.sandbox.shared.state_file import load_state, save_state_atomically


def test_pkce_matches_the_rfc_7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert verify_code_verifier(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256")
    assert verify_code_verifier("plain-one", "plain-one", None)
    assert not verify_code_verifier(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S512")


def test_consent_page_escapes_what_it_shows_and_reads_back_as_a_form() -> None:
    page = ConsentPage(
        provider="Google",
        client_name="<b>Evil & Co</b>",
        account_email="a@example.com",
        scopes=[ScopeChoice("openid", "Know who you are"), ScopeChoice("cal", "Calendars", optional=True)],
        action="/o/oauth2/v2/auth",
        hidden_fields={"state": '"><script>'},
        granular=True,
    )
    html = render_consent_page(page)
    assert "<b>Evil" not in html and "&lt;b&gt;Evil &amp; Co&lt;/b&gt;" in html
    assert "<script>" not in html
    form = read_consent_form(html)
    assert form.method == "post" and form.action == "/o/oauth2/v2/auth"
    body = dict(form.submission("deny", password="pw"))
    assert body["state"] == '"><script>' and body["decision"] == "deny" and body["granted_scope"] == "cal"
    assert ("granted_scope", "cal") not in form.submission("allow", untick=("cal",))
    with pytest.raises(ValueError, match="no 'maybe' button"):
        form.submission("maybe")


def test_faults_are_used_up_and_validated() -> None:
    faults = FaultRegistry()
    faults.add_route_fault(RouteFault(route="/x", status=503, times=1))
    faults.add_notification_fault(NotificationFault(mode="drop", times=2, stream="chan"))
    assert faults.take_route_fault("GET", "/y") is None
    assert faults.take_route_fault("GET", "/x") is not None
    assert faults.take_route_fault("GET", "/x") is None
    assert faults.take_notification_fault("other") is None
    assert [faults.take_notification_fault("chan") for _ in range(3)] == ["drop", "drop", None]
    with pytest.raises(InvalidFault):
        RouteFault.from_json({"route": "/x", "status": 200})
    with pytest.raises(InvalidFault):
        NotificationFault.from_json({"mode": "explode"})


def test_state_files_are_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "state.json"
    assert load_state(target) is None
    save_state_atomically(target, {"a": 1})
    save_state_atomically(target, {"a": 2})
    assert load_state(target) == {"a": 2}
    assert [path.name for path in target.parent.iterdir()] == ["state.json"]
    with pytest.raises(TypeError):
        save_state_atomically(target, {"not": object()})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [path.name for path in target.parent.iterdir()] == ["state.json"]


async def test_an_account_created_through_the_admin_api_signs_in_and_syncs(google: GoogleSandbox) -> None:
    created = await google.admin(
        "POST",
        "users",
        {"email": "new.user@example.com", "password": "pw-1", "timeZone": "Asia/Tokyo"},
        expect=201,
    )
    assert created["calendars"] == [{"id": "new.user@example.com", "summary": "new.user@example.com"}]
    await google.admin(
        "POST",
        f"calendars/{quote('new.user@example.com')}/events",
        {"summary": "Onboarding", "start": {"date": "2026-12-01"}, "end": {"date": "2026-12-02"}},
        expect=201,
    )
    async with google.oauth_client() as client:
        verifier = "another-long-enough-verifier-for-the-admin-test-0123456789"
        url, _ = client.create_authorization_url(
            f"{google.base_url}/o/oauth2/v2/auth", code_verifier=verifier, login_hint="new.user@example.com"
        )
        answer = await google.consent(url, email="new.user@example.com", password="pw-1")
        token = await client.fetch_token(
            f"{google.base_url}/token", code=answer["code"], code_verifier=verifier
        )
    listed = await google.api("GET", "/calendars/primary/events", token["access_token"])
    assert listed.body["timeZone"] == "Asia/Tokyo"
    assert [item["summary"] for item in listed.body["items"]] == ["Onboarding"]
    await google.admin("POST", "users", {"email": "new.user@example.com"}, expect=409)
