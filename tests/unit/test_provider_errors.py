"""Provider answers → ChronaPilot errors, on payloads recorded from the providers' documentation
(shapes in /docs of each provider; see the shared provider reference). Pure: no I/O.

Each provider has one translation function, ``translate_error(status, headers, body)``; these
tests pin what each answer means for the caller: re-authenticate, retry (and when), resync, or
give up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chronapilot.common.errors import ProviderError
from chronapilot.common.providers import (
    CursorExpired,
    InvalidCredentials,
    InvalidGrant,
    Throttled,
    TokenSet,
    Unavailable,
)
from chronapilot.common.providers.errors import retry_after_seconds
from chronapilot.common.providers.google.client import translate_error as google
from chronapilot.common.providers.icloud.caldav import translate_error as icloud
from chronapilot.common.providers.microsoft.client import translate_error as microsoft
from chronapilot.common.providers.oauth import code_challenge, new_code_verifier, new_state, token_set


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def google_api_error(status: int, reason: str, message: str, domain: str = "global") -> bytes:
    return body(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
            }
        }
    )


def aadsts(error: str, code: int, text: str) -> bytes:
    return body(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: 0f4c Correlation ID: 9a1b "
            "Timestamp: 2026-01-01 10:00:00Z",
            "error_codes": [code],
            "timestamp": "2026-01-01 10:00:00Z",
            "trace_id": "0f4c",
            "correlation_id": "9a1b",
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
    )


def graph_error(code: str, message: str) -> bytes:
    return body(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": "2026-01-01T10:00:00", "request-id": "r", "client-request-id": "c"},
            }
        }
    )


def assert_kind(
    error: ProviderError,
    kind: type[ProviderError],
    *,
    reauth: bool = False,
    retryable: bool = False,
    retry_after: float | None = None,
) -> None:
    assert type(error) is kind, repr(error)
    assert error.reauth_required is reauth
    assert error.retryable is retryable
    assert error.retry_after == retry_after


# Google -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "description",
    ["Token has been expired or revoked.", "Bad Request", "Malformed auth code.", "Invalid code verifier."],
)
def test_google_invalid_grant_means_reauthentication_and_is_never_retried(description: str) -> None:
    error = google(400, {}, body({"error": "invalid_grant", "error_description": description}))

    assert_kind(error, InvalidGrant, reauth=True)
    assert isinstance(error, InvalidGrant) and error.provider_code == "invalid_grant"
    assert error.code == "reauthentication_required"


def test_google_an_unknown_client_is_an_operator_problem_not_the_users() -> None:
    error = google(401, {}, body({"error": "invalid_client", "error_description": "Unauthorized"}))

    assert_kind(error, ProviderError)
    assert error.status == 401


def test_google_redirect_uri_mismatch_is_our_bug() -> None:
    error = google(400, {}, body({"error": "redirect_uri_mismatch", "error_description": "Bad Request"}))

    assert_kind(error, ProviderError)


def test_google_calendar_api_401_after_a_refresh_means_the_credentials_are_refused() -> None:
    error = google(
        401,
        {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
        google_api_error(401, "authError", "Invalid Credentials"),
    )

    assert_kind(error, InvalidCredentials, reauth=True)


def test_google_userinfo_401_means_the_credentials_are_refused() -> None:
    error = google(401, {}, body({"error": "invalid_request", "error_description": "Invalid Credentials"}))

    assert_kind(error, InvalidCredentials, reauth=True)


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"])
def test_google_usage_limits_on_403_are_throttling(reason: str) -> None:
    error = google(403, {}, google_api_error(403, reason, "Rate Limit Exceeded", domain="usageLimits"))

    assert_kind(error, Throttled, retryable=True)


def test_google_429_with_retry_after_says_when() -> None:
    error = google(
        429, {"retry-after": "30"}, google_api_error(429, "rateLimitExceeded", "Rate Limit", "usageLimits")
    )

    assert_kind(error, Throttled, retryable=True, retry_after=30.0)


def test_google_insufficient_permissions_needs_a_new_consent() -> None:
    error = google(403, {}, google_api_error(403, "insufficientPermissions", "Insufficient Permission"))

    assert_kind(error, ProviderError, reauth=True)


def test_google_forbidden_for_non_organizer_is_final() -> None:
    error = google(403, {}, google_api_error(403, "forbiddenForNonOrganizer", "Forbidden"))

    assert_kind(error, ProviderError)
    assert error.status == 403


@pytest.mark.parametrize(
    "payload",
    [
        google_api_error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."),
        body({"error": {"code": 410, "message": "Gone"}}),
    ],
)
def test_google_410_on_a_sync_token_means_full_sync(payload: bytes) -> None:
    assert_kind(google(410, {}, payload), CursorExpired)


def test_google_410_deleted_is_an_event_gone_not_a_dead_cursor() -> None:
    error = google(410, {}, google_api_error(410, "deleted", "Resource has been deleted"))

    assert_kind(error, ProviderError)


def test_google_404_not_found_is_final() -> None:
    assert_kind(google(404, {}, google_api_error(404, "notFound", "Not Found")), ProviderError)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_google_server_errors_are_transient(status: int) -> None:
    error = google(status, {}, google_api_error(status, "backendError", "Backend Error"))

    assert_kind(error, Unavailable, retryable=True)


def test_google_503_with_retry_after_is_throttling() -> None:
    error = google(503, {"Retry-After": "4"}, google_api_error(503, "backendError", "Backend Error"))

    assert_kind(error, Throttled, retryable=True, retry_after=4.0)


def test_google_an_html_error_page_is_still_translated() -> None:
    assert_kind(google(502, {}, b"<html><body>502 Bad Gateway</body></html>"), Unavailable, retryable=True)


def test_google_token_endpoint_temporarily_unavailable_is_transient() -> None:
    error = google(503, {}, body({"error": "temporarily_unavailable", "error_description": "try later"}))

    assert_kind(error, Unavailable, retryable=True)


# Microsoft --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("invalid_grant", 50173),  # grant revoked (password changed)
        ("invalid_grant", 70008),  # expired from inactivity
        ("invalid_grant", 700082),  # refresh token expired (90 days)
        ("invalid_grant", 700084),  # SPA refresh token past 24 h
        ("invalid_grant", 70000),  # refresh token already rotated away
        ("invalid_grant", 65001),  # consent missing
        ("invalid_grant", 54005),  # code already redeemed
        ("invalid_grant", 501481),  # PKCE verifier mismatch
        ("interaction_required", 50076),  # MFA required
        ("interaction_required", 50079),  # MFA registration required
        ("consent_required", 65001),
    ],
)
def test_microsoft_grant_errors_mean_reauthentication(error: str, code: int) -> None:
    translated = microsoft(400, {}, aadsts(error, code, "Something about the grant."))

    assert_kind(translated, InvalidGrant, reauth=True)
    assert isinstance(translated, InvalidGrant) and translated.provider_code == f"AADSTS{code}"
    assert "Trace ID" not in str(translated)


@pytest.mark.parametrize("code", [7000215, 7000222])
def test_microsoft_a_bad_client_secret_is_an_operator_problem(code: int) -> None:
    error = microsoft(401, {}, aadsts("invalid_client", code, "Invalid client secret provided."))

    assert_kind(error, ProviderError)


def test_microsoft_invalid_scope_is_our_bug() -> None:
    assert_kind(microsoft(400, {}, aadsts("invalid_scope", 70011, "The scope is invalid.")), ProviderError)


def test_microsoft_token_endpoint_temporarily_unavailable_is_transient() -> None:
    error = microsoft(503, {}, aadsts("temporarily_unavailable", 90033, "Try again."))

    assert_kind(error, Unavailable, retryable=True)


def test_microsoft_graph_401_after_a_refresh_means_the_credentials_are_refused() -> None:
    error = microsoft(
        401,
        {"WWW-Authenticate": 'Bearer realm=""'},
        graph_error("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    )

    assert_kind(error, InvalidCredentials, reauth=True)


@pytest.mark.parametrize("code", ["ErrorAccessDenied", "Authorization_RequestDenied"])
def test_microsoft_access_denied_needs_a_new_consent(code: str) -> None:
    assert_kind(microsoft(403, {}, graph_error(code, "Access is denied.")), ProviderError, reauth=True)


def test_microsoft_item_not_found_is_final() -> None:
    error = microsoft(404, {}, graph_error("ErrorItemNotFound", "The specified object was not found."))

    assert_kind(error, ProviderError)


@pytest.mark.parametrize("code", ["SyncStateNotFound", "syncStateNotFound", "resyncRequired"])
def test_microsoft_410_sync_state_not_found_means_full_sync(code: str) -> None:
    error = microsoft(410, {}, graph_error(code, "The sync state generation is not found; generation=149"))

    assert_kind(error, CursorExpired)


def test_microsoft_429_says_when_to_retry() -> None:
    error = microsoft(
        429, {"Retry-After": "12"}, graph_error("ApplicationThrottled", "Application is over its limit.")
    )

    assert_kind(error, Throttled, retryable=True, retry_after=12.0)


def test_microsoft_503_with_retry_after_is_throttling() -> None:
    error = microsoft(503, {"Retry-After": "5"}, graph_error("ServiceNotAvailable", "Unavailable."))

    assert_kind(error, Throttled, retryable=True, retry_after=5.0)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_microsoft_server_errors_without_retry_after_are_transient(status: int) -> None:
    assert_kind(microsoft(status, {}, graph_error("UnknownError", "")), Unavailable, retryable=True)


def test_microsoft_a_non_json_gateway_error_is_transient() -> None:
    assert_kind(microsoft(502, {}, b"Bad Gateway"), Unavailable, retryable=True)


# iCloud (CalDAV) --------------------------------------------------------------------------------


def test_icloud_401_means_the_app_password_is_refused() -> None:
    error = icloud(401, {"WWW-Authenticate": 'Basic realm="MMCalDav"'}, b"")

    assert_kind(error, InvalidCredentials, reauth=True)
    assert error.code == "invalid_credentials"


@pytest.mark.parametrize("status", [403, 409])
def test_icloud_valid_sync_token_precondition_means_full_sync(status: int) -> None:
    payload = b'<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>'

    assert_kind(icloud(status, {}, payload), CursorExpired)


def test_icloud_a_plain_403_is_final() -> None:
    assert_kind(icloud(403, {}, b""), ProviderError)


def test_icloud_503_with_retry_after_is_throttling() -> None:
    assert_kind(icloud(503, {"Retry-After": "60"}, b""), Throttled, retryable=True, retry_after=60.0)


def test_icloud_503_without_retry_after_is_transient() -> None:
    assert_kind(icloud(503, {}, b""), Unavailable, retryable=True)


def test_icloud_429_is_throttling() -> None:
    assert_kind(icloud(429, {}, b""), Throttled, retryable=True)


# Retry-After ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("-5", 0.0),
        ("Wed, 01 Jan 2026 10:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2026 09:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
        ("nan", None),
        ("1e400", None),
        ("1e12", 86400.0),
        ("Fri, 01 Jan 9999 10:00:00 GMT", 86400.0),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)) == seconds


# Token responses and PKCE (the OAuth values the translation relies on) --------------------------


def test_a_token_response_becomes_a_token_set() -> None:
    now = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
    tokens = token_set(
        {
            "access_token": "ya29.a0",
            "expires_in": 3599,
            "refresh_token": "1//0g",
            "scope": "openid https://www.googleapis.com/auth/calendar",
            "token_type": "Bearer",
        },
        now=now,
    )

    assert tokens == TokenSet(
        "ya29.a0", "1//0g", datetime(2026, 1, 1, 10, 59, 59, tzinfo=UTC),
        ("openid", "https://www.googleapis.com/auth/calendar"),
    )  # fmt: skip
    assert "ya29" not in repr(tokens) and "1//0g" not in repr(tokens)


def test_a_token_response_without_a_refresh_token_or_scope() -> None:
    tokens = token_set({"access_token": "at", "expires_in": 60})

    assert tokens.refresh_token is None and tokens.scopes == ()


def test_a_token_response_without_an_access_token_is_an_error() -> None:
    with pytest.raises(ProviderError):
        token_set({"token_type": "Bearer"})


def test_the_s256_challenge_is_rfc_7636s() -> None:
    # RFC 7636, Appendix B
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_verifiers_and_states_are_long_unreserved_and_fresh() -> None:
    verifiers = {new_code_verifier() for _ in range(50)}
    states = {new_state() for _ in range(50)}

    assert len(verifiers) == 50 and len(states) == 50
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert all(c.isascii() and (c.isalnum() or c in "-._~") for c in verifier)
