"""Parsing and verifying provider notifications: pure, on recorded shapes (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chronapilot.common.providers.google.push import GooglePush
from chronapilot.common.providers.http import Answer, ProviderHttp
from chronapilot.common.providers.microsoft.push import (
    MAX_BATCH_ITEMS,
    MicrosoftPush,
    _lifetime_limit,
    parse_graph_time,
)
from chronapilot.common.providers.push import (
    Changed,
    Handshake,
    InvalidNotification,
    Lifecycle,
    LifecycleEvent,
    hash_secret,
    secret_matches,
)

GOOGLE_HEADERS = {
    "X-Goog-Channel-ID": "4ba78bf0-6a47-11e2-bcfd-0800200c9a66",
    "X-Goog-Channel-Token": "opaque-secret",
    "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
    "X-Goog-Resource-ID": "ret08u3rv24htgh289g",
    "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
    "X-Goog-Resource-State": "exists",
    "X-Goog-Message-Number": "10",
}

GRAPH_CHANGE = {
    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
    "subscriptionExpirationDateTime": "2026-01-07T10:00:00+00:00",
    "changeType": "updated",
    "resource": "Users/u1/Events/e1",
    "resourceData": {
        "@odata.type": "#Microsoft.Graph.Event",
        "@odata.id": "Users/u1/Events/e1",
        "@odata.etag": 'W/"DwAAABYAAAA"',
        "id": "e1",
    },
    "clientState": "secret-up-to-128-chars",
    "tenantId": "t1",
}


#: Parsing is pure: the components need no HTTP client for it.
NO_HTTP: ProviderHttp = None  # type: ignore[assignment]


def google_push() -> GooglePush:
    return GooglePush(NO_HTTP, "")


def microsoft_push() -> MicrosoftPush:
    return MicrosoftPush(NO_HTTP, "")


def google(**changes: str | None) -> Changed:
    headers = {k: v for k, v in {**GOOGLE_HEADERS, **changes}.items() if v is not None}
    parsed = google_push().parse_notification(headers, b"", {})
    assert isinstance(parsed, tuple) and len(parsed) == 1 and isinstance(parsed[0], Changed)
    return parsed[0]


def graph(*items: dict, query: dict[str, str] | None = None):
    return microsoft_push().parse_notification({}, json.dumps({"value": list(items)}).encode(), query or {})


def test_a_google_change_names_its_channel_token_and_message():
    item = google()
    assert item.subscription_id == GOOGLE_HEADERS["X-Goog-Channel-ID"]
    assert item.secret == "opaque-secret"
    assert item.dedupe_key == f"{GOOGLE_HEADERS['X-Goog-Channel-ID']}:10"
    assert not item.initial
    assert "opaque-secret" not in repr(item)


def test_google_sync_message_is_initial_and_not_exists_is_a_change():
    assert google(**{"X-Goog-Resource-State": "sync", "X-Goog-Message-Number": "1"}).initial
    assert not google(**{"X-Goog-Resource-State": "not_exists"}).initial


def test_google_header_names_are_case_insensitive_and_the_token_optional():
    headers = {k.lower(): v for k, v in GOOGLE_HEADERS.items() if k != "X-Goog-Channel-Token"}
    (item,) = google_push().parse_notification(headers, b"", {})  # type: ignore[misc]
    assert item.secret is None


@pytest.mark.parametrize(
    "changes",
    [
        {"X-Goog-Channel-ID": None},
        {"X-Goog-Resource-ID": None},
        {"X-Goog-Resource-State": None},
        {"X-Goog-Resource-State": "deleted"},
        {"X-Goog-Message-Number": None},
        {"X-Goog-Message-Number": "ten"},
        {"X-Goog-Message-Number": "\u00b2"},  # superscript two: a digit to str.isdigit, not to int
        {"X-Goog-Message-Number": "\u0661\u0662"},  # Arabic-Indic digits
        {"X-Goog-Message-Number": "1" * 4301},  # past int()'s digit limit
        {"X-Goog-Message-Number": "1" * 21},  # past any 64-bit number
        {"X-Goog-Message-Number": "-1"},
        {"X-Goog-Message-Number": " 10"},
    ],
)
def test_malformed_google_notifications_are_refused(changes):
    with pytest.raises(InvalidNotification):
        google(**changes)


def test_a_google_message_number_is_read_as_a_number():
    assert google(**{"X-Goog-Message-Number": "0010"}).dedupe_key == google().dedupe_key
    assert google(**{"X-Goog-Message-Number": "9" * 20}).dedupe_key.endswith(":" + "9" * 20)


def test_the_microsoft_handshake_echoes_the_decoded_token():
    token = "Validation: Testing client application reachability for subscription Request-Id: 1"
    assert microsoft_push().parse_notification({}, b"", {"validationToken": token}) == Handshake(token)


def test_a_graph_batch_gives_one_item_per_notification():
    other = {**GRAPH_CHANGE, "subscriptionId": "other", "changeType": "created"}
    first, second = graph(GRAPH_CHANGE, other)
    assert isinstance(first, Changed) and isinstance(second, Changed)
    assert first.subscription_id == GRAPH_CHANGE["subscriptionId"]
    assert first.secret == "secret-up-to-128-chars"
    assert first.dedupe_key != second.dedupe_key
    (again,) = graph(GRAPH_CHANGE)
    assert again.dedupe_key == first.dedupe_key


@pytest.mark.parametrize("event", list(LifecycleEvent))
def test_each_graph_lifecycle_notification_is_recognised(event):
    item = {
        "lifecycleEvent": event.value,
        "subscriptionId": "s1",
        "subscriptionExpirationDateTime": "2026-01-07T10:00:00+00:00",
        "clientState": "lifecycle-secret",
        "tenantId": "t",
    }
    (parsed,) = graph(item)
    assert isinstance(parsed, Lifecycle)
    assert parsed.event is event
    assert parsed.secret == "lifecycle-secret"
    assert "lifecycle-secret" not in repr(parsed)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"value": []}',
        b'{"value": {}}',
        b'{"value": [{"changeType": "updated"}]}',
        b'{"value": [{"subscriptionId": "s"}]}',
        b'{"value": [{"subscriptionId": "s", "lifecycleEvent": "somethingElse"}]}',
    ],
)
def test_malformed_graph_notifications_are_refused(body):
    with pytest.raises(InvalidNotification):
        microsoft_push().parse_notification({}, body, {})


def test_a_graph_batch_of_more_than_the_cap_is_refused_whole():
    assert len(graph(*[GRAPH_CHANGE] * MAX_BATCH_ITEMS)) == MAX_BATCH_ITEMS
    with pytest.raises(InvalidNotification, match=str(MAX_BATCH_ITEMS)):
        graph(*[GRAPH_CHANGE] * (MAX_BATCH_ITEMS + 1))


def test_secrets_are_compared_by_hash():
    stored = hash_secret("s3cret")
    assert "s3cret" not in stored
    assert secret_matches("s3cret", stored)
    assert not secret_matches("s3cre", stored)
    assert not secret_matches(None, stored)
    assert not secret_matches("", stored)


def test_graph_timestamps_with_seven_fraction_digits_and_offsets():
    assert parse_graph_time("2026-01-07T10:00:00.1234567Z") == datetime(2026, 1, 7, 10, 0, 0, 123456, UTC)
    assert parse_graph_time("2026-01-07T12:00:00+02:00") == datetime(2026, 1, 7, 10, 0, tzinfo=UTC)
    assert parse_graph_time("2026-01-07T10:00:00") == datetime(2026, 1, 7, 10, 0, tzinfo=UTC)


def test_graph_lifetime_refusal_tells_the_allowed_lifetime():
    body = {
        "error": {
            "code": "ExtensionError",
            "message": "Subscription expiration can only be 4230 minutes in the future.",
        }
    }
    assert _lifetime_limit(Answer(400, {}, json.dumps(body).encode())).total_seconds() == 4230 * 60
    assert (
        _lifetime_limit(Answer(400, {}, b'{"error": {"code": "ValidationError", "message": "no"}}')) is None
    )
    assert _lifetime_limit(Answer(201, {}, b"{}")) is None
