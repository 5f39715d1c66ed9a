"""schemathesis hooks for tests/e2e/test_openapi_conformance.py, loaded into the schemathesis
process by ``SCHEMATHESIS_HOOKS``.

The OpenAPI document states each parameter exactly; a few rules span several parameters, the
application's configuration or the stored data, which JSON Schema cannot state (the document
says them in words). A schema-valid (positive) case is made to follow them before it is sent,
one function per rule below, so the positive-data check judges what the schema can promise.
Negative cases go out as generated.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from typing import Any

import schemathesis
import schemathesis.transport.requests as requests_transport
from urllib3 import PoolManager

#: Under the test application's allowed return-URL prefix / a URL a webhook may point at.
RETURN_URL = os.environ.get("CHRONAPILOT_TEST_RETURN_URL", "")
WEBHOOK_URL = os.environ.get("CHRONAPILOT_TEST_WEBHOOK_URL", "")
VALID_RULE = ["RRULE:FREQ=DAILY;COUNT=3"]


def _without_pool_count(session: object) -> int:
    return 0


# While `caldav` is installed, niquests' urllib3-future stands in for urllib3 and its pool
# container has no keys(): schemathesis' count of open connections (only used to resend a
# request a keep-alive connection dropped) fails on every request. Count none instead.
if not hasattr(PoolManager().pools, "keys"):
    requests_transport._count_opened_connections = _without_pool_count


def _one_key_per_request(case: Any) -> None:
    """The same Idempotency-Key with another request is refused (400 `idempotency_key_reused`)."""
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


def _one_cursor(query: dict[str, Any]) -> None:
    """`starting_after` or `ending_before`, not both."""
    if query.get("starting_after") is not None and query.get("ending_before") is not None:
        del query["ending_before"]


def _window(query: dict[str, Any]) -> None:
    """`start` before `end`, at most 366 days apart."""
    start, end = query.get("start"), query.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return
    begins = datetime.fromisoformat(start.replace("Z", "+00:00"))
    ends = datetime.fromisoformat(end.replace("Z", "+00:00"))
    if not timedelta(0) < ends - begins <= timedelta(days=366):
        query["end"] = (begins + timedelta(hours=1)).isoformat()


def _expansion(query: dict[str, Any]) -> None:
    """`expand_recurring=true` needs `start` and `end`, takes no `updated_since` or
    `include_deleted`, and pages by occurrence ids (a generated cursor names none)."""
    if query.get("expand_recurring") not in (True, "true"):
        return
    if query.get("start") is None or query.get("end") is None:
        query["expand_recurring"] = "false"
        return
    for name in ("updated_since", "include_deleted", "starting_after", "ending_before"):
        query.pop(name, None)


def _event_times(body: dict[str, Any], *, partial: bool) -> None:
    """`end` of the same kind as `start` (timed or all-day) and after it; an update of one of
    them alone must fit the stored other one, so it changes both or neither."""
    start, end = body.get("start"), body.get("end")
    if partial and (start is None) != (end is None):
        body.pop("start", None)
        body.pop("end", None)
        body.setdefault("title", "schemathesis")
        return
    if not isinstance(start, dict) or not isinstance(end, dict):
        return
    if start.get("date") is not None:
        day = datetime.fromisoformat(start["date"]).date()
        body["end"] = {"date": (day + timedelta(days=1)).isoformat()}
    else:
        instant = datetime.fromisoformat(start["date_time"].replace("Z", "+00:00"))
        body["end"] = {"date_time": (instant + timedelta(hours=1)).isoformat()}


def _parsable_recurrence(body: dict[str, Any]) -> None:
    """`recurrence` lines must parse as RFC 5545 (the schema checks only their names)."""
    if body.get("recurrence"):
        body["recurrence"] = VALID_RULE
    body.pop("original_start", None)  # an occurrence exists only in a recurring series


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    _one_key_per_request(case)
    route = (case.method.upper(), case.operation.path)
    if isinstance(case.query, dict):
        _one_cursor(case.query)
        _window(case.query)
        _expansion(case.query)
        if route == ("DELETE", "/v1/events/{id}"):
            case.query.pop("original_start", None)  # only for a recurring series
    if not isinstance(case.body, dict):
        return
    if route in {("POST", "/v1/events"), ("PATCH", "/v1/events/{id}")}:
        _event_times(case.body, partial=route[0] == "PATCH")
        _parsable_recurrence(case.body)
    if route == ("POST", "/v1/connections/start"):
        case.body["return_url"] = RETURN_URL  # under one of the application's prefixes
    if route[1].startswith("/v1/webhook_endpoints") and "url" in case.body:
        case.body["url"] = WEBHOOK_URL  # a receivable address
