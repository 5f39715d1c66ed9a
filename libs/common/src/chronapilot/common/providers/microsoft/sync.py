"""Microsoft event sync: the calendar-view delta of one calendar.

Source: learn.microsoft.com/graph/delta-query-events. A full sync (no cursor) starts a delta
round over a window (``startDateTime``/``endDateTime``, by default a year back to two years
ahead of now, fixed when it starts and named on every page as ``EventPage.window``: what lies
outside was not read, so the caller deletes nothing there) with
``GET /me/calendars/{id}/calendarView/delta``, follows every
``@odata.nextLink`` and ends on the page with ``@odata.deltaLink``: that whole URL is the
cursor, called verbatim next time (the window is baked into it). Items are single events,
occurrences and exceptions, never series masters; ``@removed`` items are deletions (an item
the mirror never held may come as one: removing it is a no-op). An expired delta or skip token
answers ``410 SyncStateNotFound`` → ``CursorExpired``.

Every request says ``Prefer: odata.maxpagesize=<n>, outlook.timezone="UTC",
outlook.body-content-type="text"``. Paging links must point at Graph's own origin: the bearer
token is never sent anywhere else.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from chronapilot.common.errors import ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import TokenSource
from chronapilot.common.providers.errors import CursorExpired
from chronapilot.common.providers.http import ProviderHttp
from chronapilot.common.providers.microsoft.parse import is_removed, parse_event
from chronapilot.common.providers.paging import read_ahead
from chronapilot.common.providers.sync import EventData, EventPage, SyncWindow
from chronapilot.common.providers.telemetry import Operation

log = get_logger(__name__)

#: The largest page Graph serves for calendar-view delta.
MAX_PAGE_SIZE = 1000
#: Default window of a full sync, relative to now.
WINDOW_PAST = timedelta(days=365)
WINDOW_FUTURE = timedelta(days=730)
#: A delta link keeps the window of the full sync that began it: after this long a sync runs a
#: full sync instead, so the window follows the calendar forward (what it leaves is kept).
WINDOW_ROLL = timedelta(days=30)
#: A bound on one sync's pages.
MAX_PAGES = 10_000


def sync_events(
    http: ProviderHttp,
    graph_url: str,
    token: TokenSource,
    calendar_id: str,
    cursor: str | None,
    *,
    same_origin: Callable[[str], str],
    page_size: int = MAX_PAGE_SIZE,
    window: tuple[timedelta, timedelta] = (WINDOW_PAST, WINDOW_FUTURE),
    now: datetime | None = None,
) -> AsyncIterator[EventPage]:
    """Pages of a full (``cursor`` None) or incremental sync of one calendar, read ahead."""
    pages = _pages(http, graph_url, token, calendar_id, cursor, same_origin, page_size, window, now)
    return read_ahead(pages)


async def _pages(
    http: ProviderHttp,
    graph_url: str,
    token: TokenSource,
    calendar_id: str,
    cursor: str | None,
    same_origin: Callable[[str], str],
    page_size: int,
    window: tuple[timedelta, timedelta],
    now: datetime | None,
) -> AsyncGenerator[EventPage, None]:
    headers = {
        "Prefer": f'odata.maxpagesize={page_size}, outlook.timezone="UTC", outlook.body-content-type="text"'
    }
    params: dict[str, str] | None = None
    span: SyncWindow | None = None
    if cursor is None:
        url = f"{graph_url}/me/calendars/{quote(calendar_id, safe='')}/calendarView/delta"
        moment = (now or datetime.now(UTC)).replace(microsecond=0)
        span = SyncWindow(moment - window[0], moment + window[1])
        params = {"startDateTime": _iso(span.start), "endDateTime": _iso(span.end)}
    else:
        try:
            url = same_origin(cursor)
        except ProviderError:  # Graph moved (settings changed): the stored link is useless
            raise CursorExpired("microsoft: the delta link points outside Graph", status=None) from None
    for _ in range(MAX_PAGES):
        body = await http.authorized_json(
            "GET", url, token, operation=Operation.SYNC_EVENTS, params=params, headers=headers
        )
        params = None
        next_link = body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
        if not next_link and not delta_link:
            raise ProviderError("microsoft: a delta page has neither a nextLink nor a deltaLink")
        yield page_of(body, next_cursor=None if next_link else str(delta_link), window=span)
        if not next_link:
            return
        url = same_origin(str(next_link))
    raise ProviderError(f"microsoft: calendar-view delta has more than {MAX_PAGES} pages")


def page_of(
    body: Mapping[str, Any], *, next_cursor: str | None, window: SyncWindow | None = None
) -> EventPage:
    """One delta response as an :class:`EventPage`."""
    upserts: list[EventData] = []
    deletions: list[str] = []
    for item in body.get("value") or ():
        if is_removed(item):
            deletions.append(str(item["id"]))
            continue
        try:
            upserts.append(parse_event(item))
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
        ) as exc:  # one malformed event must not stop the sync
            log.warning(
                "sync.event_unreadable", provider="microsoft", event_id=item.get("id"), error=repr(exc)
            )
    return EventPage(
        upserts=tuple(upserts), deletions=tuple(deletions), next_cursor=next_cursor, window=window
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
