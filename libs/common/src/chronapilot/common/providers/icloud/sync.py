"""CalDAV event sync: our own ``sync-collection`` REPORT (RFC 6578), or ctag/etag comparison.

The caldav library's ``objects_by_sync_token`` falls back silently to a full listing on any
error (an expired token included), ignores ``507`` truncation and loads deletions one by one,
so the requests are sent here, with aiohttp, over HTTP Basic from the token source (a ``401``
asks it once more with ``force_refresh=True``).

- **sync-collection** (the collection has a ``DAV:sync-token``): ``REPORT Depth: 0`` with the
  stored token (empty on a full sync), ``sync-level`` 1 and ``getetag``; a ``507`` on the
  collection's own response means "truncated": ask again with the token it returned. Removed
  members (``404``) are deletions; changed ones are fetched by ``calendar-multiget`` in batches
  (:attr:`ICloudSync.batch_size`, 100), one page per batch; hrefs the multiget reports missing
  are deletions. A rejected token (``403``/``409`` with ``DAV:valid-sync-token``) raises
  ``CursorExpired`` before any page. Cursor: ``"dav:" + sync-token``.
- **ctag/etag fallback** (a server without sync-collection): ``PROPFIND Depth: 0`` for
  ``CS:getctag`` (unchanged → nothing to do), else ``PROPFIND Depth: 1`` for every member's
  ``getetag``, compared with the previous listing: new or changed members are fetched, missing
  ones deleted. Cursor: ``"ctag:"`` + the ctag and the listing, compressed (the state lives in
  the cursor, so the caller stores one opaque string either way).

Each resource holds a whole series (master + overrides), so every page of an incremental sync
names the resources it carries in ``series_replaced`` (a full sync leaves it empty: the caller
drops whatever a full sync did not return). iCalendar parsing of a batch runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping, Sequence
from xml.sax.saxutils import escape

import aiohttp

from chronapilot.common.errors import ProviderError
from chronapilot.common.logging import get_logger
from chronapilot.common.providers.base import AppPassword, TokenSource
from chronapilot.common.providers.errors import CursorExpired, InvalidCredentials
from chronapilot.common.providers.http import Answer, ProviderHttp
from chronapilot.common.providers.icloud.parse import (
    Fetched,
    collection_state,
    etag_listing,
    href_key,
    multiget_answer,
    parse_resource,
    sync_answer,
)
from chronapilot.common.providers.paging import read_ahead
from chronapilot.common.providers.sync import EventData, EventPage
from chronapilot.common.providers.telemetry import Operation

log = get_logger(__name__)

DAV_PREFIX = "dav:"
CTAG_PREFIX = "ctag:"
#: hrefs per calendar-multiget (50 to 100 is safe for iCloud).
BATCH_SIZE = 100
#: Multigets per batch while a server leaves hrefs out of its answers (each must make progress).
MULTIGET_ATTEMPTS = 3
#: A bound on truncated (507) sync-collection rounds in one sync.
MAX_ROUNDS = 1000

#: every status: the caller looks at the answer itself (and still gets the 401 rule)
_ANY_STATUS = range(100, 600)
_XML = {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml, text/xml"}
_STATE_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
    "<d:prop><d:sync-token/><cs:getctag/></d:prop></d:propfind>"
)
_ETAGS_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:resourcetype/></d:prop></d:propfind>'
)


def _sync_body(token: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:sync-collection xmlns:d="DAV:"><d:sync-token>{escape(token)}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def _multiget_body(hrefs: Sequence[str]) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        + "".join(f"<d:href>{escape(href)}</d:href>" for href in hrefs)
        + "</c:calendar-multiget>"
    )


def encode_ctag_cursor(ctag: str | None, etags: Mapping[str, str]) -> str:
    """The fallback's cursor: the ctag and ``{href as sent: etag}``, compressed."""
    raw = json.dumps({"ctag": ctag, "etags": etags}, separators=(",", ":"), sort_keys=True).encode()
    return CTAG_PREFIX + base64.urlsafe_b64encode(zlib.compress(raw, 6)).decode()


def decode_ctag_cursor(cursor: str) -> tuple[str | None, dict[str, str]]:
    """The inverse of :func:`encode_ctag_cursor`; an unreadable one is ``CursorExpired``."""
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(cursor[len(CTAG_PREFIX) :].encode()))
        state = json.loads(raw)
        etags = {str(href): str(etag) for href, etag in dict(state["etags"]).items()}
        ctag = state.get("ctag")
        return (str(ctag) if ctag is not None else None), etags
    except (ValueError, TypeError, KeyError, zlib.error):
        raise CursorExpired("icloud: the ctag cursor is unreadable", status=None) from None


class DavRequests:
    """Basic-authenticated WebDAV requests with the token-source 401 rule."""

    def __init__(self, http: ProviderHttp, token: TokenSource, operation: Operation) -> None:
        self._http = http
        self._token = token
        self._operation = operation

    async def call(
        self,
        method: str,
        url: str,
        body: str,
        *,
        depth: str | None,
        ok: Collection[int] = (207,),
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request (``depth`` None: no ``Depth`` header; ``headers`` replace the XML ones)."""
        answer = await self._send(method, url, body, depth, await self._token(False), headers)
        if answer.status == 401:
            answer = await self._send(method, url, body, depth, await self._token(True), headers)
        return self._http.check(answer, ok)

    def check(self, answer: Answer, ok: Collection[int] = (207,)) -> Answer:
        """``answer`` if its status is in ``ok``; else the translated error is raised."""
        return self._http.check(answer, ok)

    async def _send(
        self,
        method: str,
        url: str,
        body: str,
        depth: str | None,
        credentials: str,
        extra: Mapping[str, str] | None,
    ) -> Answer:
        try:
            credential = AppPassword.from_token(credentials)
        except ValueError:
            raise InvalidCredentials("icloud: the stored credentials are malformed") from None
        auth = aiohttp.encode_basic_auth(credential.username, credential.password)
        headers = {**_XML, **(extra or {}), "Authorization": auth}
        if depth is not None:
            headers["Depth"] = depth
        return await self._http.send(
            method, url, operation=self._operation, data=body or None, headers=headers
        )


class ICloudSync:
    """One sync of one calendar collection (``calendar_id`` = its absolute URL)."""

    def __init__(
        self,
        dav: DavRequests,
        calendar_url: str,
        *,
        batch_size: int = BATCH_SIZE,
        use_sync_collection: bool = True,
    ) -> None:
        self._dav = dav
        self._url = calendar_url if calendar_url.endswith("/") else calendar_url + "/"
        self._batch_size = batch_size
        self._use_sync_collection = use_sync_collection

    def pages(self, cursor: str | None) -> AsyncIterator[EventPage]:
        """The sync's pages, each next multiget requested while the caller handles the current."""
        return read_ahead(self._pages(cursor))

    async def _pages(self, cursor: str | None) -> AsyncGenerator[EventPage, None]:
        if cursor is not None and cursor.startswith(DAV_PREFIX):
            async for page in self._sync_collection(cursor[len(DAV_PREFIX) :]):
                yield page
            return
        if cursor is not None and not cursor.startswith(CTAG_PREFIX):
            raise CursorExpired("icloud: the cursor is not one this provider issued", status=None)
        sync_token, ctag = await self._state()
        if cursor is None and sync_token is not None and self._use_sync_collection:
            async for page in self._sync_collection(""):
                yield page
            return
        async for page in self._compare_etags(cursor, ctag):
            yield page

    async def _state(self) -> tuple[str | None, str | None]:
        answer = await self._dav.call("PROPFIND", self._url, _STATE_BODY, depth="0")
        return collection_state(answer.body)

    # sync-collection -----------------------------------------------------------------------

    async def _sync_collection(self, token: str) -> AsyncIterator[EventPage]:
        first_token = token
        changed: dict[str, str] = {}
        removed: dict[str, None] = {}
        for _ in range(MAX_ROUNDS):
            answer = sync_answer((await self._report(token)).body, self._url)
            for href in answer.removed:
                changed.pop(href, None)
                removed[href] = None
            for href, etag in answer.changed.items():
                removed.pop(href, None)
                changed[href] = etag
            if answer.sync_token is None:
                raise ProviderError("icloud: a sync-collection answer has no sync-token")
            token = answer.sync_token
            if not answer.truncated:
                break
        else:
            raise ProviderError(f"icloud: sync-collection was truncated more than {MAX_ROUNDS} times")
        deletions = [href_key(self._url, href) for href in removed]
        async for page in self._fetch(list(changed), deletions, DAV_PREFIX + token, full=not first_token):
            yield page

    async def _report(self, token: str) -> Answer:
        answer = await self._dav.call("REPORT", self._url, _sync_body(token), depth="0", ok=_ANY_STATUS)
        if answer.status in (405, 501) or (answer.status == 403 and b"supported-report" in answer.body):
            # the server stopped offering sync-collection: a full sync will compare etags instead
            raise CursorExpired(f"icloud: sync-collection refused ({answer.status})", status=answer.status)
        return self._dav.check(answer)

    # ctag/etag fallback ----------------------------------------------------------------------

    async def _compare_etags(self, cursor: str | None, ctag: str | None) -> AsyncIterator[EventPage]:
        old_ctag, old_etags = decode_ctag_cursor(cursor) if cursor is not None else (None, {})
        if cursor is not None and ctag is not None and ctag == old_ctag:
            yield EventPage(upserts=(), deletions=(), next_cursor=cursor)
            return
        listing = etag_listing(
            (await self._dav.call("PROPFIND", self._url, _ETAGS_BODY, depth="1")).body, self._url
        )
        old_by_key = {href_key(self._url, href): etag for href, etag in old_etags.items()}
        current_keys = {href_key(self._url, href) for href in listing}
        changed = [
            href for href, etag in listing.items() if old_by_key.get(href_key(self._url, href)) != etag
        ]
        deletions = sorted(key for key in old_by_key if key not in current_keys)
        async for page in self._fetch(
            changed, deletions, encode_ctag_cursor(ctag, listing), full=cursor is None
        ):
            yield page

    # fetching --------------------------------------------------------------------------------

    async def _fetch(
        self, hrefs: list[str], deletions: list[str], cursor: str, *, full: bool
    ) -> AsyncIterator[EventPage]:
        """Pages of the resources ``hrefs``; an incremental sync names each in ``series_replaced``
        (a full sync needs not: the caller drops whatever it did not return)."""
        batches = [hrefs[i : i + self._batch_size] for i in range(0, len(hrefs), self._batch_size)] or [[]]
        pending_deletions = list(deletions)
        for number, batch in enumerate(batches):
            upserts: list[EventData] = []
            replaced: list[str] = []
            if batch:
                parsed = await asyncio.to_thread(self._parse_batch, await self._multiget(batch))
                for resource_id, events in parsed:
                    if events is None:
                        pending_deletions.append(resource_id)
                    else:
                        upserts.extend(events)
                        replaced.append(resource_id)
            last = number == len(batches) - 1
            yield EventPage(
                upserts=tuple(upserts),
                deletions=tuple(pending_deletions),
                next_cursor=cursor if last else None,
                series_replaced=() if full else tuple(replaced),
            )
            pending_deletions = []

    async def _multiget(self, hrefs: list[str]) -> list[Fetched]:
        """Every href's data or 404; hrefs a server leaves out of its answer (some cap a multiget
        silently) are asked for again, and a sync fails rather than skip one."""
        fetched: list[Fetched] = []
        wanted = list(hrefs)
        for _ in range(MULTIGET_ATTEMPTS):
            answer = await self._dav.call("REPORT", self._url, _multiget_body(wanted), depth="1")
            got = multiget_answer(answer.body)
            fetched += got
            returned = {href_key(self._url, item.href) for item in got}
            left_out = [href for href in wanted if href_key(self._url, href) not in returned]
            if not left_out:
                return fetched
            progress = len(left_out) < len(wanted)
            wanted = left_out
            if not progress:
                break
        raise ProviderError(f"icloud: a calendar-multiget left {len(wanted)} of the asked resources out")

    def _parse_batch(self, fetched: list[Fetched]) -> list[tuple[str, list[EventData] | None]]:
        parsed: list[tuple[str, list[EventData] | None]] = []
        for item in fetched:
            resource_id = href_key(self._url, item.href)
            if item.data is None:
                parsed.append((resource_id, None))
                continue
            try:
                parsed.append((resource_id, parse_resource(resource_id, item.etag, item.data)))
            except (ProviderError, KeyError, TypeError, ValueError, AttributeError) as exc:
                # one unreadable resource must not stop the calendar's sync
                log.warning("sync.event_unreadable", provider="icloud", event_id=resource_id, error=repr(exc))
        return parsed
