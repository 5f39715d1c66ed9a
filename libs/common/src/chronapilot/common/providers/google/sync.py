"""Google event sync: ``events.list`` pages with ``singleEvents=false`` and ``showDeleted=true``.

A full sync (no cursor) lists every event of the calendar: single events, recurring masters,
their exceptions and cancelled instances, and recently deleted events (which become
``deletions``). The last page's ``nextSyncToken`` is the cursor; an incremental sync passes it as
``syncToken`` with the same other parameters (Google requires it), and a token Google no longer
knows answers ``410`` (``fullSyncRequired``) → ``CursorExpired`` before any page
(developers.google.com/calendar/api/guides/sync).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

from chronapilot.common.errors import ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.google.parse import is_deletion, parse_event
from chronapilot.common.providers.http import ProviderHttp
from chronapilot.common.providers.paging import read_ahead
from chronapilot.common.providers.sync import EventData, EventPage
from chronapilot.common.providers.telemetry import Operation

log = get_logger(__name__)

#: Google's maximum ``maxResults`` for events.list.
MAX_PAGE_SIZE = 2500
#: A bound on one sync's pages (10 million events at the maximum page size).
MAX_PAGES = 4000


def sync_events(
    http: ProviderHttp,
    api_url: str,
    token: TokenSource,
    calendar_id: str,
    cursor: str | None,
    *,
    page_size: int = MAX_PAGE_SIZE,
) -> AsyncIterator[EventPage]:
    """Pages of a full (``cursor`` None) or incremental sync of one calendar, read ahead."""
    return read_ahead(_pages(http, api_url, token, calendar_id, cursor, page_size))


async def _pages(
    http: ProviderHttp, api_url: str, token: TokenSource, calendar_id: str, cursor: str | None, page_size: int
) -> AsyncGenerator[EventPage, None]:
    url = f"{api_url}/calendars/{quote(calendar_id, safe='')}/events"
    base = {"maxResults": str(page_size), "singleEvents": "false", "showDeleted": "true"}
    if cursor is not None:
        base["syncToken"] = cursor
    params = dict(base)
    for _ in range(MAX_PAGES):
        body = await http.authorized_json("GET", url, token, operation=Operation.SYNC_EVENTS, params=params)
        next_page = body.get("nextPageToken")
        next_cursor = None if next_page else body.get("nextSyncToken")
        if not next_page and not next_cursor:
            raise ProviderError("google: events.list ended without a nextSyncToken")
        yield page_of(body, next_cursor=str(next_cursor) if next_cursor else None)
        if not next_page:
            return
        params = {**base, "pageToken": str(next_page)}
    raise ProviderError(f"google: events.list has more than {MAX_PAGES} pages")


def page_of(body: dict[str, Any], *, next_cursor: str | None) -> EventPage:
    """One ``events.list`` response as an :class:`EventPage`."""
    zone = body.get("timeZone") or None
    upserts: list[EventData] = []
    deletions: list[str] = []
    for item in body.get("items") or ():
        if is_deletion(item):
            deletions.append(str(item["id"]))
            continue
        try:
            upserts.append(parse_event(item, zone))
        except (KeyError, TypeError, ValueError) as exc:  # one malformed event must not stop the sync
            log.warning("sync.event_unreadable", provider="google", event_id=item.get("id"), error=repr(exc))
    return EventPage(upserts=tuple(upserts), deletions=tuple(deletions), next_cursor=next_cursor)
