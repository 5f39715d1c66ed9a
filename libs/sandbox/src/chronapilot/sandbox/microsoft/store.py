"""The emulated mailbox data: users, calendars, events, and each calendar's change log.

Every write (Graph or admin) goes through `Store`, which stamps the event, appends
`(sequence, event id, state before)` to its calendar's log, and tells the listeners (change
notifications). Delta tokens are sequence numbers into these logs, so an incremental round
reads only the log entries after its token (`bisect`), never the whole calendar.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import random
import uuid
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .recurrence import find_occurrence, split_occurrence_id, validate_recurrence
from .times import InvalidTime, format_stamp, parse_local, utc_now, zone

WRITABLE_FIELDS = frozenset(
    {
        "subject",
        "body",
        "start",
        "end",
        "isAllDay",
        "location",
        "locations",
        "attendees",
        "organizer",
        "showAs",
        "sensitivity",
        "importance",
        "categories",
        "recurrence",
        "isReminderOn",
        "reminderMinutesBeforeStart",
        "isOnlineMeeting",
        "responseRequested",
        "allowNewTimeProposals",
        "hideAttendees",
        "transactionId",
    }
)
EXCEPTION_FIELDS = WRITABLE_FIELDS - {"recurrence", "isAllDay", "transactionId"}
LOG_LIMIT = 20_000  # change-log entries kept per calendar (then the older half is dropped)


class NotFound(LookupError):
    """No such user, calendar or event (Graph: 404 ErrorItemNotFound)."""


class InvalidEvent(ValueError):
    """An event body Graph would refuse (400)."""


@dataclass
class User:
    id: str
    display_name: str
    given_name: str
    surname: str
    mail: str | None
    user_principal_name: str
    password: str


@dataclass
class Calendar:
    id: str
    user_id: str
    name: str
    color: str = "auto"
    hex_color: str = ""
    is_default: bool = False
    change_key: str = ""
    can_edit: bool = True  # False: shared with the mailbox read-only; writes answer 403
    min_valid_seq: int = 0  # delta tokens older than this answer 410
    log_seqs: list[int] = field(default_factory=list)
    log_entries: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)


@dataclass
class StoredEvent:
    id: str
    calendar_id: str
    user_id: str
    ical_uid: str
    created: str
    modified: str
    change_key: str
    fields: dict[str, Any]
    exceptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    deleted: bool = False

    def snapshot(self) -> dict[str, Any]:
        """The state a delta round compares against (deep copy)."""
        return {
            "fields": copy.deepcopy(self.fields),
            "exceptions": copy.deepcopy(self.exceptions),
            "cancelled": list(self.cancelled),
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One change, for change notifications."""

    user_id: str
    calendar_id: str
    item_id: str
    change_type: str  # created | updated | deleted
    etag: str


class Store:
    """All mailbox data of one emulator instance."""

    def __init__(self, seed: int | None = None, now: Callable[[], datetime] = utc_now) -> None:
        self.now = now
        self.rng = random.Random(seed)
        self.seq = 0
        self.users: dict[str, User] = {}
        self.calendars: dict[str, Calendar] = {}
        self.events: dict[str, StoredEvent] = {}
        self.listeners: list[Callable[[Change], None]] = []
        self._by_calendar: dict[str, dict[str, StoredEvent]] = {}
        self.log_limit = LOG_LIMIT

    # ids -------------------------------------------------------------------------------------

    def new_guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_item_id(self, prefix: str) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(33))
        return prefix + base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def change_key_for(*parts: object) -> str:
        digest = hashlib.sha1("|".join(map(str, parts)).encode(), usedforsecurity=False).digest()
        return base64.b64encode(digest[:15]).decode()

    # users and calendars ---------------------------------------------------------------------

    def add_user(self, email: str, display_name: str, password: str, *, mail_visible: bool = True) -> User:
        if self.user_by_email(email) is not None:
            raise InvalidEvent(f"user {email} exists")
        given, _, surname = display_name.partition(" ")
        user = User(
            self.new_guid(), display_name, given, surname, email if mail_visible else None, email, password
        )
        self.users[user.id] = user
        self.add_calendar(user.id, "Calendar", is_default=True)
        return user

    def user_by_email(self, email: str) -> User | None:
        wanted = email.lower()
        return next((u for u in self.users.values() if u.user_principal_name.lower() == wanted), None)

    def user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise NotFound(user_id) from None

    def add_calendar(
        self,
        user_id: str,
        name: str,
        *,
        color: str = "auto",
        hex_color: str = "",
        is_default: bool = False,
        can_edit: bool = True,
    ) -> Calendar:
        self.user(user_id)
        cal = Calendar(
            self.new_item_id("AAMkADCa"), user_id, name, color, hex_color, is_default, can_edit=can_edit
        )
        cal.change_key = self.change_key_for(cal.id, 0)
        self.calendars[cal.id] = cal
        return cal

    def calendars_of(self, user_id: str) -> list[Calendar]:
        return [c for c in self.calendars.values() if c.user_id == user_id]

    def default_calendar(self, user_id: str) -> Calendar:
        cals = self.calendars_of(user_id)
        for cal in cals:
            if cal.is_default:
                return cal
        if not cals:
            raise NotFound(user_id)
        return cals[0]

    def calendar(self, calendar_id: str, user_id: str | None = None) -> Calendar:
        cal = self.calendars.get(calendar_id)
        if cal is None or (user_id is not None and cal.user_id != user_id):
            raise NotFound(calendar_id)
        return cal

    # events ----------------------------------------------------------------------------------

    def event(self, event_id: str, user_id: str | None = None) -> StoredEvent:
        ev = self.events.get(event_id)
        if ev is None or ev.deleted or (user_id is not None and ev.user_id != user_id):
            raise NotFound(event_id)
        return ev

    def event_by_transaction(self, user_id: str, transaction_id: str) -> StoredEvent | None:
        """The live event of the mailbox created with ``transactionId`` = ``transaction_id``."""
        return next(
            (
                ev
                for ev in self.events.values()
                if not ev.deleted
                and ev.user_id == user_id
                and ev.fields.get("transactionId") == transaction_id
            ),
            None,
        )

    def create_event(
        self, calendar_id: str, body: dict[str, Any], *, user_id: str | None = None
    ) -> StoredEvent:
        """A new event; a body whose ``transactionId`` an event of the mailbox already carries
        creates nothing and returns that event (a retried POST)."""
        cal = self.calendar(calendar_id, user_id)
        fields = _clean(body, WRITABLE_FIELDS)
        transaction_id = fields.get("transactionId")
        if transaction_id is not None:
            if not isinstance(transaction_id, str) or not transaction_id:
                raise InvalidEvent("transactionId must be a non-empty string.")
            existing = self.event_by_transaction(cal.user_id, transaction_id)
            if existing is not None:
                return existing
        owner = self.users[cal.user_id]
        fields.setdefault(
            "organizer", {"emailAddress": {"name": owner.display_name, "address": owner.user_principal_name}}
        )
        _validate(fields)
        now = format_stamp(self.now())
        ev = StoredEvent(
            id=self.new_item_id("AAMkADEv"),
            calendar_id=cal.id,
            user_id=cal.user_id,
            ical_uid="040000008200E00074C5B7101A82E008"
            + self.rng.getrandbits(128).to_bytes(16).hex().upper(),
            created=now,
            modified=now,
            change_key="",
            fields=fields,
        )
        ev.change_key = self.change_key_for(ev.id, now, 0)
        self.events[ev.id] = ev
        self._by_calendar.setdefault(cal.id, {})[ev.id] = ev
        self._record(cal, ev, None, "created", ev.id)
        return ev

    def update_event(
        self, item_id: str, patch: dict[str, Any], *, user_id: str | None = None
    ) -> tuple[StoredEvent, str]:
        """Apply a PATCH to an event or one occurrence; returns (event, id of the item changed)."""
        ev, key = self._resolve(item_id, user_id)
        if "transactionId" in patch and patch["transactionId"] != ev.fields.get("transactionId"):
            raise InvalidEvent("The transactionId of an event cannot be changed.")
        before = ev.snapshot()
        if key is None:
            changes = _clean(patch, WRITABLE_FIELDS)
            fields = {**ev.fields, **changes}
            _validate(fields)
            if ev.fields.get("recurrence") and any(
                changes.get(name, ev.fields.get(name)) != ev.fields.get(name)
                for name in ("recurrence", "start", "end", "isAllDay")
            ):
                # A new pattern or time for the series: its exceptions and cancellations are gone.
                ev.exceptions, ev.cancelled = {}, []
            ev.fields = fields
        else:
            override = ev.exceptions.get(key, {"fields": {}})
            merged = {**override["fields"], **_clean(patch, EXCEPTION_FIELDS)}
            _validate({**ev.fields, **merged, "recurrence": None})
            ev.exceptions[key] = {"fields": merged, "modified": format_stamp(self.now())}
        self._touch(ev)
        self._record(self.calendars[ev.calendar_id], ev, before, "updated", item_id)
        return ev, item_id

    def delete_event(self, item_id: str, *, user_id: str | None = None) -> StoredEvent:
        """Delete an event, or cancel one occurrence of a series."""
        ev, key = self._resolve(item_id, user_id)
        before = ev.snapshot()
        if key is None:
            ev.deleted = True
        else:
            if key not in ev.cancelled:
                ev.cancelled.append(key)
        self._touch(ev)
        self._record(self.calendars[ev.calendar_id], ev, before, "deleted", item_id)
        return ev

    def _resolve(self, item_id: str, user_id: str | None) -> tuple[StoredEvent, str | None]:
        occurrence = split_occurrence_id(item_id)
        if occurrence is None:
            return self.event(item_id, user_id), None
        master_id, key = occurrence
        ev = self.event(master_id, user_id)
        if key in ev.cancelled or find_occurrence(ev.id, ev.fields, key, ev.exceptions) is None:
            raise NotFound(item_id)
        return ev, key

    def _touch(self, ev: StoredEvent) -> None:
        ev.modified = format_stamp(self.now())
        ev.change_key = self.change_key_for(ev.id, ev.modified, self.seq + 1)

    def _record(
        self, cal: Calendar, ev: StoredEvent, before: dict[str, Any] | None, change_type: str, item_id: str
    ) -> None:
        self.seq += 1
        cal.log_seqs.append(self.seq)
        cal.log_entries.append((ev.id, before))
        if len(cal.log_seqs) > self.log_limit:
            # Forget the older half, as Graph lets old sync state go: tokens before it answer 410.
            cut = len(cal.log_seqs) // 2
            cal.min_valid_seq = max(cal.min_valid_seq, cal.log_seqs[cut - 1])
            del cal.log_seqs[:cut], cal.log_entries[:cut]
        change = Change(ev.user_id, cal.id, item_id, change_type, f'W/"{ev.change_key}"')
        for listener in self.listeners:
            listener(change)

    def changes_between(self, cal: Calendar, after: int, upto: int) -> dict[str, dict[str, Any] | None]:
        """Event id -> its state before the first change in (after, upto], in log order."""
        lo = bisect_right(cal.log_seqs, after)
        hi = bisect_right(cal.log_seqs, upto)
        first: dict[str, dict[str, Any] | None] = {}
        for event_id, before in cal.log_entries[lo:hi]:
            if event_id not in first:
                first[event_id] = before
        return first

    def live_events(self, calendar_id: str) -> list[StoredEvent]:
        return [e for e in self._by_calendar.get(calendar_id, {}).values() if not e.deleted]

    def reindex(self) -> None:
        """Rebuild the per-calendar index (after loading a state file)."""
        self._by_calendar = {}
        for ev in self.events.values():
            self._by_calendar.setdefault(ev.calendar_id, {})[ev.id] = ev


def _clean(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidEvent("the request body must be a JSON object")
    return {k: copy.deepcopy(v) for k, v in body.items() if k in allowed}


def _validate(fields: dict[str, Any]) -> None:
    for name in ("start", "end"):
        value = fields.get(name)
        if not isinstance(value, dict) or not value.get("dateTime"):
            raise InvalidEvent(f"The event property '{name}' is required.")
    try:
        start_zone = zone(fields["start"].get("timeZone"))
        end_zone = zone(fields["end"].get("timeZone"))
        start = parse_local(fields["start"]["dateTime"]).replace(tzinfo=start_zone)
        end = parse_local(fields["end"]["dateTime"]).replace(tzinfo=end_zone)
        if fields.get("recurrence"):
            validate_recurrence(fields["recurrence"])
    except InvalidTime as exc:
        raise InvalidEvent(str(exc)) from exc
    if end < start:
        raise InvalidEvent("The end of an event must not be earlier than its start.")
    if fields.get("isAllDay"):
        for wall in (start, end):
            if (wall.hour, wall.minute, wall.second, wall.microsecond) != (0, 0, 0, 0):
                raise InvalidEvent("An all-day event must start and end at midnight.")
