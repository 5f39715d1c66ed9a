"""Calendar-view delta: `GET /v1.0/me[/calendars/{id}]/calendarView/delta`.

A round starts with `startDateTime`/`endDateTime`; every page but the last carries
`@odata.nextLink` (`$skiptoken`), the last `@odata.deltaLink` (`$deltatoken`). Both tokens are
signed, opaque encodings of (calendar, window, sequence range, offset):

- an initial round lists the window as of sequence `upto` (the calendar's state when it began);
- a later round reads the calendar's change log in `(after, upto]` and, per changed event,
  compares the items it had before the first change with the items it has now: current items are
  returned, vanished ones as `@removed`; an event changed entirely outside the window comes back
  as `@removed` too, as Graph documents.

A round's entries are computed lazily, one event at a time, only as far as the pages asked for
so far, and cached: a page costs the work for its own items, whatever the calendar's size. A token that does
not verify, names another user's calendar, or is older than the calendar's `min_valid_seq`
answers `410 SyncStateNotFound`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from .recurrence import Instance, expand
from .resources import Presentation, event_json
from .state import MicrosoftState
from .store import Calendar, StoredEvent, User

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
_CACHE_SIZE = 64
_RENDER_CACHE_SIZE = 50_000
_EXPANSION_CACHE_SIZE = 200_000


@dataclass(frozen=True, slots=True)
class Cursor:
    calendar_id: str
    start: float  # window, epoch seconds
    end: float
    after: int  # -1: initial round
    upto: int
    offset: int = 0


class DeltaStateNotFound(LookupError):
    """The token is unknown, foreign or expired (410)."""


Entry = tuple[StoredEvent, Instance] | str  # an item to render, or the id of a removed item


class LazyRound:
    """A round's entries, computed only as far as the pages asked for so far."""

    def __init__(self, source: Iterator[list[Entry]]) -> None:
        self.items: list[Entry] = []
        self._source: Iterator[list[Entry]] | None = source

    def fill(self, count: int) -> bool:
        """Compute entries until there are `count` (or no more); True if there are `count`."""
        while len(self.items) < count and self._source is not None:
            chunk = next(self._source, None)
            if chunk is None:
                self._source = None
            else:
                self.items.extend(chunk)
        return len(self.items) >= count


class DeltaEngine:
    """Computes delta rounds for one emulator; caches each round's list of entries."""

    def __init__(self, state: MicrosoftState) -> None:
        self.state = state
        self._rounds: OrderedDict[tuple[Any, ...], LazyRound] = OrderedDict()
        self._views: OrderedDict[tuple[Any, ...], list[tuple[StoredEvent, Instance]]] = OrderedDict()
        self._rendered: OrderedDict[tuple[str, str, Presentation], bytes] = OrderedDict()
        self._expansions: OrderedDict[tuple[str, str, float, float], list[Instance]] = OrderedDict()

    def rendered(self, ev: StoredEvent, inst: Instance, owner: User, shown: Presentation) -> bytes:
        """One calendar-view item as JSON bytes, cached until the event changes."""
        key = (inst.item_id, ev.change_key, shown)
        cached = self._rendered.get(key)
        if cached is None:
            data = event_json(ev, owner, self.state.base_url, shown, inst)
            cached = json.dumps(data, separators=(",", ":")).encode()
            self._rendered[key] = cached
            if len(self._rendered) > _RENDER_CACHE_SIZE:
                self._rendered.popitem(last=False)
        return cached

    # tokens ----------------------------------------------------------------------------------

    def encode(self, cursor: Cursor) -> str:
        payload = json.dumps(
            [cursor.calendar_id, cursor.start, cursor.end, cursor.after, cursor.upto, cursor.offset],
            separators=(",", ":"),
        ).encode()
        mac = hmac.new(self.state.token_secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    def decode(self, token: str, user_id: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:12], raw[12:]
            expected = hmac.new(self.state.token_secret, payload, hashlib.sha256).digest()[:12]
            if not hmac.compare_digest(mac, expected):
                raise DeltaStateNotFound(token)
            cal_id, start, end, after, upto, offset = json.loads(payload)
            cursor = Cursor(str(cal_id), float(start), float(end), int(after), int(upto), int(offset))
        except (ValueError, TypeError) as exc:
            raise DeltaStateNotFound(token) from exc
        cal = self.state.store.calendars.get(cursor.calendar_id)
        if cal is None or cal.user_id != user_id:
            raise DeltaStateNotFound(token)
        # An incremental round needs the log from `after` on; an initial one only its snapshot.
        needed = cursor.after if cursor.after >= 0 else cursor.upto
        if cursor.upto > self.state.store.seq or needed < cal.min_valid_seq:
            raise DeltaStateNotFound(token)
        return cursor

    # rounds ----------------------------------------------------------------------------------

    def start_round(self, cal: Calendar, start: datetime, end: datetime) -> Cursor:
        # With `delta_quirks`, the round opens with an empty page that still has a nextLink.
        first = -1 if self.state.settings.delta_quirks else 0
        return Cursor(cal.id, start.timestamp(), end.timestamp(), -1, self.state.store.seq, first)

    def resume_round(self, delta: Cursor) -> Cursor:
        """The incremental round a delta token starts: changes after it, up to now."""
        return Cursor(delta.calendar_id, delta.start, delta.end, delta.after, self.state.store.seq)

    def page(self, cursor: Cursor, size: int) -> tuple[list[Entry], str | None, str | None]:
        """Entries of this page, and the skip token or the delta token that follows it."""
        if cursor.offset < 0:
            skip = Cursor(cursor.calendar_id, cursor.start, cursor.end, cursor.after, cursor.upto, 0)
            return [], self.encode(skip), None
        entries = self._round(cursor)
        next_offset = cursor.offset + size
        more = entries.fill(next_offset + 1)  # one past the page: is there a next page?
        chunk = entries.items[cursor.offset : next_offset]
        if more:
            skip = Cursor(
                cursor.calendar_id, cursor.start, cursor.end, cursor.after, cursor.upto, next_offset
            )
            return chunk, self.encode(skip), None
        # With `delta_quirks`, the next round replays the last change (Graph replays at times).
        after = max(cursor.after, cursor.upto - 1) if self.state.settings.delta_quirks else cursor.upto
        delta = Cursor(cursor.calendar_id, cursor.start, cursor.end, after, cursor.upto)
        return chunk, None, self.encode(delta)

    def _round(self, cursor: Cursor) -> LazyRound:
        key = (cursor.calendar_id, cursor.start, cursor.end, cursor.after, cursor.upto)
        cached = self._rounds.get(key)
        if cached is not None:
            self._rounds.move_to_end(key)
            return cached
        source = self._initial(cursor) if cursor.after < 0 else self._changes(cursor)
        entries = LazyRound(source)
        self._rounds[key] = entries
        if len(self._rounds) > _CACHE_SIZE:
            self._rounds.popitem(last=False)
        return entries

    def view(self, calendar_id: str, start: float, end: float) -> list[tuple[StoredEvent, Instance]]:
        """Every item of a calendar view, ordered by start (cached per calendar state)."""
        cal = self.state.store.calendars[calendar_id]
        last = cal.log_seqs[-1] if cal.log_seqs else 0
        key = (calendar_id, start, end, last)
        cached = self._views.get(key)
        if cached is not None:
            self._views.move_to_end(key)
            return cached
        keyed = [
            ((inst.start.timestamp(), inst.item_id), ev, inst)
            for ev in self.state.store.live_events(calendar_id)
            for inst in self._expanded(ev, start, end)
        ]
        keyed.sort(key=itemgetter(0))
        items = [(ev, inst) for _, ev, inst in keyed]
        self._views[key] = items
        if len(self._views) > _CACHE_SIZE:
            self._views.popitem(last=False)
        return items

    def _expanded(self, ev: StoredEvent, start: float, end: float) -> list[Instance]:
        """An event's items in a window, cached until the event changes."""
        key = (ev.id, ev.change_key, start, end)
        cached = self._expansions.get(key)
        if cached is None:
            cached = expand(ev.id, ev.fields, ev.exceptions, frozenset(ev.cancelled), _utc(start), _utc(end))
            self._expansions[key] = cached
            if len(self._expansions) > _EXPANSION_CACHE_SIZE:
                self._expansions.popitem(last=False)
        return cached

    def _initial(self, cursor: Cursor) -> Iterator[list[Entry]]:
        """An initial round, one event at a time, in the calendar's order (Graph promises none)."""
        for ev in self.state.store.live_events(cursor.calendar_id):
            if not ev.deleted:  # deleted since the round began: the next round says so
                yield [(ev, inst) for inst in self._expanded(ev, cursor.start, cursor.end)]

    def _changes(self, cursor: Cursor) -> Iterator[list[Entry]]:
        """An incremental round, one changed event at a time."""
        store = self.state.store
        cal = store.calendars[cursor.calendar_id]
        lo, hi = _utc(cursor.start), _utc(cursor.end)
        for event_id, before in store.changes_between(cal, cursor.after, cursor.upto).items():
            entries: list[Entry] = []
            before_ids: set[str] = set()
            if before is not None and not before["deleted"]:
                before_ids = {
                    inst.item_id
                    for inst in expand(
                        event_id,
                        before["fields"],
                        before["exceptions"],
                        frozenset(before["cancelled"]),
                        lo,
                        hi,
                    )
                }
            current = store.events.get(event_id)
            now_items: list[Instance] = []
            if current is not None and not current.deleted:
                now_items = self._expanded(current, cursor.start, cursor.end)
                entries.extend((current, inst) for inst in now_items)
            now_ids = {inst.item_id for inst in now_items}
            if not before_ids and not now_ids:
                # Graph's documented quirk: a change outside the window surfaces as `@removed`.
                entries.append(event_id)
            entries.extend(sorted(before_ids - now_ids))
            yield entries


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def parse_prefer(headers: list[str]) -> dict[str, str]:
    """`Prefer` preferences (several headers or comma-separated) as name -> value."""
    prefs: dict[str, str] = {}
    for header in headers:
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


def page_size(prefs: dict[str, str]) -> tuple[int, bool]:
    """The page size to use and whether `odata.maxpagesize` was applied."""
    raw = prefs.get("odata.maxpagesize")
    if raw is None:
        return DEFAULT_PAGE_SIZE, False
    try:
        size = int(raw)
    except ValueError:
        return DEFAULT_PAGE_SIZE, False
    if size < 1:
        return DEFAULT_PAGE_SIZE, False
    return min(size, MAX_PAGE_SIZE), True
