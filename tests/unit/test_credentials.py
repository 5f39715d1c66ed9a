"""Credentials: the two value types, how a credentials document holds them (both shapes), and
the optional components every provider declares."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest
from pydantic import SecretStr

from chronapilot.common.crypto import TokenCipher
from chronapilot.common.models.credentials import (
    Credentials,
    credential_fields,
    credential_kind,
    read_credential,
)
from chronapilot.common.providers import AppPassword, OAuthGrant, TokenSet, build_providers
from chronapilot.common.settings import ProviderSettings

CIPHER = TokenCipher({"k1": b"1" * 32})
CONNECTION = "con_a"
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def seal(value: str) -> str:
    return CIPHER.encrypt(value, associated_data=CONNECTION)


def open_(sealed: str) -> str:
    return CIPHER.decrypt(sealed, associated_data=CONNECTION)


def stored(credential: OAuthGrant | AppPassword, **more: object) -> dict[str, object]:
    """The document activation writes for ``credential`` (before ``$unset``)."""
    fields, _ = credential_fields(credential, seal)
    return {"_id": CONNECTION, "provider": "x", **fields, "updated_at": EXPIRES, "version": 1, **more}


def test_an_app_password_is_stored_sealed_in_its_own_field_and_read_back():
    credential = AppPassword("someone@icloud.example", "abcd-efgh-ijkl-mnop")
    fields, stale = credential_fields(credential, seal)
    assert fields["kind"] == "app_password" and fields["username"] == "someone@icloud.example"
    assert "abcd-efgh" not in repr(fields)  # sealed
    assert stale == ["refresh_token"]  # an old-shape copy of the password does not survive a re-link
    assert fields["access_token"] is None and fields["access_expires_at"] is None
    assert read_credential(stored(credential, scopes=["calendar.read"]), open_) == credential
    Credentials.model_validate(stored(credential))


def test_an_old_app_password_document_without_kind_is_read_from_refresh_token():
    """Written before ``kind``: the password sat in ``refresh_token`` next to ``username``."""
    old = {
        "_id": CONNECTION,
        "provider": "icloud",
        "access_token": None,
        "refresh_token": seal("abcd-efgh-ijkl-mnop"),
        "access_expires_at": None,
        "scopes": ["calendar.read", "calendar.write"],
        "username": "someone@icloud.example",
        "updated_at": EXPIRES,
        "version": 3,
    }
    assert credential_kind(old) == "app_password"
    credential = read_credential(old, open_)
    assert credential == AppPassword("someone@icloud.example", "abcd-efgh-ijkl-mnop")
    assert isinstance(credential, AppPassword)
    assert credential.token() == "someone@icloud.example:abcd-efgh-ijkl-mnop"
    assert Credentials.model_validate(old).kind is None


def test_an_old_oauth_document_without_kind_is_an_oauth_grant():
    old = {
        "_id": CONNECTION,
        "provider": "google",
        "access_token": seal("ya29.access"),
        "refresh_token": seal("1//refresh"),
        "access_expires_at": EXPIRES,
        "scopes": ["openid", "email"],
        "username": None,
        "updated_at": EXPIRES,
        "version": 2,
    }
    assert credential_kind(old) == "oauth"
    assert read_credential(old, open_) == OAuthGrant(
        TokenSet("ya29.access", "1//refresh", EXPIRES, ("openid", "email"))
    )


def test_an_oauth_grant_round_trips_and_drops_app_password_fields():
    grant = OAuthGrant(TokenSet("ya29.access", None, EXPIRES, ("openid",)))
    fields, stale = credential_fields(grant, seal)
    assert fields["kind"] == "oauth" and fields["refresh_token"] is None
    assert stale == ["username", "password"]
    assert read_credential(stored(grant), open_) == grant


def test_a_document_without_a_usable_password_holds_no_credential():
    assert read_credential({"kind": "app_password", "username": "a@b.example"}, open_) is None
    assert read_credential({"username": "a@b.example", "refresh_token": None}, open_) is None


def test_no_secret_shows_in_a_repr():
    password = AppPassword("someone@icloud.example", "abcd-efgh-ijkl-mnop")
    grant = OAuthGrant(TokenSet("ya29.access", "1//refresh", EXPIRES, ()))
    for text in (repr(password), str(password), repr(grant), repr([password, grant])):
        assert "abcd-efgh" not in text and "ya29" not in text and "1//refresh" not in text


def test_an_app_password_round_trips_through_its_token_value():
    credential = AppPassword("someone@icloud.example", "pass:with:colons")
    assert AppPassword.from_token(credential.token()) == credential
    with pytest.raises(ValueError):
        AppPassword("some:one", "x")
    with pytest.raises(ValueError):
        AppPassword.from_token("no-separator")


async def test_optional_parts_are_components_declared_by_each_provider():
    settings = ProviderSettings(
        google_client_id="g",
        google_client_secret=SecretStr("gs"),
        microsoft_client_id="m",
        microsoft_client_secret=SecretStr("ms"),
    )
    async with aiohttp.ClientSession() as http:
        providers = build_providers(settings, http)
    google, microsoft, icloud = providers["google"], providers["microsoft"], providers["icloud"]
    assert google.push is not None and not google.push.renewable and google.push.name == "google"
    assert microsoft.push is not None and microsoft.push.renewable and microsoft.push.name == "microsoft"
    assert icloud.push is None
    for provider in providers.values():
        # consent is OAuth exactly when there is no app-password sign-in
        assert provider.capabilities.oauth == (provider.password_sign_in is None)
    sign_in = icloud.password_sign_in
    assert sign_in is not None
    assert sign_in.form.account_is_email and sign_in.form.password_term == "app-specific password"
