"""Google write-back, the pure parts: request bodies, instance ids, and what Google's refusals
mean (recorded error bodies; the emulator has no read-only calendars to refuse a write)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from chronapilot.common.providers.errors import Throttled, Unavailable
from chronapilot.common.providers.google.client import translate_error
from chronapilot.common.providers.google.writes import event_body, instance_id, raise_write_error
from chronapilot.common.providers.http import Answer
from chronapilot.common.providers.sync import Attendee, EventTime
from chronapilot.common.providers.writes import (
    EventDraft,
    EventNotFound,
    PreconditionFailed,
    WriteRefused,
)

NINE_IN_KOLKATA = EventTime(datetime(2027, 1, 4, 3, 30, tzinfo=UTC), None, "Asia/Kolkata")
TEN_IN_KOLKATA = EventTime(datetime(2027, 1, 4, 4, 30, tzinfo=UTC), None, "Asia/Kolkata")
DAY = EventTime(None, date(2027, 1, 4), None)


def test_a_create_body_holds_wall_time_zone_and_what_is_set() -> None:
    draft = EventDraft(
        title="Planning",
        start=NINE_IN_KOLKATA,
        end=TEN_IN_KOLKATA,
        recurrence=("RRULE:FREQ=WEEKLY;COUNT=5",),
        attendees=(Attendee("ana@example.com", "Ana", "accepted", optional=True, organizer=False),),
    )
    assert event_body(draft) == {
        "summary": "Planning",
        "start": {"dateTime": "2027-01-04T09:00:00+05:30", "timeZone": "Asia/Kolkata"},
        "end": {"dateTime": "2027-01-04T10:00:00+05:30", "timeZone": "Asia/Kolkata"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
        "attendees": [{"email": "ana@example.com", "displayName": "Ana", "optional": True}],
    }


def test_a_patch_body_names_only_its_fields_and_clears_with_null() -> None:
    draft = EventDraft(description=None, start=DAY, end=DAY, fields=frozenset({"description", "start"}))
    assert event_body(draft, patch=True) == {
        "description": None,
        "start": {"date": "2027-01-04", "dateTime": None, "timeZone": None},
    }
    zoneless = EventTime(datetime(2027, 1, 4, 9, tzinfo=UTC), None, None)
    assert event_body(EventDraft(start=zoneless, fields=frozenset({"start"})), patch=True) == {
        "start": {"dateTime": "2027-01-04T09:00:00+00:00", "timeZone": None, "date": None}
    }


def test_a_series_without_a_zone_is_written_in_utc_and_an_unknown_zone_is_refused() -> None:
    zoneless = EventTime(datetime(2027, 1, 4, 9, tzinfo=UTC), None, None)
    body = event_body(EventDraft(start=zoneless, end=zoneless, recurrence=("RRULE:FREQ=DAILY",)))
    assert body["start"] == {"dateTime": "2027-01-04T09:00:00+00:00", "timeZone": "UTC"}
    nowhere = EventTime(datetime(2027, 1, 4, 9, tzinfo=UTC), None, "Mars/Olympus")
    with pytest.raises(WriteRefused) as refused:
        event_body(EventDraft(start=nowhere, end=nowhere))
    assert refused.value.reason == "invalid"


def test_instance_ids() -> None:
    assert instance_id("abc123def", NINE_IN_KOLKATA) == "abc123def_20270104T033000Z"
    assert instance_id("abc123def", DAY) == "abc123def_20270104"


def google_error(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    return Answer(status, headers or {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        (google_error(403, "forbidden", "Forbidden"), WriteRefused, "read_only"),
        (
            google_error(403, "requiredAccessLevel", "You need to have writer access to this calendar."),
            WriteRefused,
            "read_only",
        ),
        (
            google_error(403, "insufficientPermissions", "Insufficient Permission"),
            WriteRefused,
            "scope_insufficient",
        ),
        (google_error(400, "invalid", "Invalid attendee email."), WriteRefused, "invalid"),
        (google_error(412, "conditionNotMet", "Precondition Failed"), PreconditionFailed, None),
        (google_error(404, "notFound", "Not Found"), EventNotFound, None),
        (google_error(410, "deleted", "Resource has been deleted"), EventNotFound, None),
        (
            google_error(403, "rateLimitExceeded", "Rate Limit Exceeded", {"Retry-After": "3"}),
            Throttled,
            None,
        ),
        (google_error(429, "rateLimitExceeded", "Rate Limit Exceeded"), Throttled, None),
        (google_error(503, "backendError", "Backend Error"), Unavailable, None),
    ],
)
def test_what_a_refusal_means(answer: Answer, error: type[Exception], reason: str | None) -> None:
    with pytest.raises(error) as raised:
        raise_write_error(answer, translate_error)
    if reason is not None:
        assert isinstance(raised.value, WriteRefused) and raised.value.reason == reason
    if isinstance(raised.value, Throttled) and answer.status == 403:
        assert raised.value.retry_after == 3


def test_an_invalid_event_carries_googles_message() -> None:
    with pytest.raises(WriteRefused) as refused:
        raise_write_error(google_error(400, "invalid", "Invalid attendee email."), translate_error)
    assert str(refused.value) == "Invalid attendee email."
