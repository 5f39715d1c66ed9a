"""What a provider page changes in the mirror, decided without I/O (:func:`plan_page`).

The rules, the same for every provider (:mod:`chronapilot.common.providers.sync`):

- an upsert is written when the mirror does not hold it, holds it deleted, or holds other
  content (by ``content_hash``); it is left alone when the content is the same, and when the
  mirror's provider ``updated`` time is newer than the page's (a stale page cannot win);
- a page that lists an id twice is read in order, as if applied one event at a time, and
  writes the id once: the later copy wins unless it is older (by ``updated``) than the earlier;
- a deletion marks deleted the event with that id and the events of the series it names
  (``recurring_event_id``), the page's own upserts included (they are written first);
  a deletion that names nothing live changes nothing;
- ``series_replaced``: the mirrored events of those series that the page does not list are
  marked deleted.

What a plan changes is also said the way customers are told it (:class:`PageChanges`): an
event the mirror lacked or held deleted is created, another written one updated, a live one
marked deleted deleted; one the page both writes and deletes changes only if it was live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chronapilot.common.models.event import mirror_fields
from chronapilot.common.providers.sync import EventData, EventPage


@dataclass(frozen=True)
class StoredEvent:
    """What the mirror holds of one event, as far as a plan needs it."""

    provider_event_id: str
    content_hash: str | None = None
    provider_updated_at: datetime | None = None
    deleted: bool = False
    recurring_event_id: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    id: str | None = None  # the mirror's ``evt_`` id

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> StoredEvent:
        return cls(
            id=doc.get("_id"),
            provider_event_id=doc["provider_event_id"],
            content_hash=doc.get("content_hash"),
            provider_updated_at=doc.get("provider_updated_at"),
            deleted=bool(doc.get("deleted")),
            recurring_event_id=doc.get("recurring_event_id"),
            start_at=doc.get("start_at"),
            end_at=doc.get("end_at"),
        )


@dataclass(frozen=True)
class Write:
    """An upsert to write: ``fields`` are the event's mirror fields (``mirror_fields``)."""

    event: EventData
    fields: dict[str, Any] = field(repr=False)
    insert: bool  # the mirror does not hold the event yet

    @property
    def provider_event_id(self) -> str:
        return self.event.provider_event_id


@dataclass(frozen=True)
class PageChanges:
    """What a plan changes in the mirror, by provider event id, in page order."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass(frozen=True)
class PagePlan:
    """What applying a page does. Every upsert of the page is counted once: written
    (``inserted`` + ``updated``), ``unchanged``, ``stale`` or ``superseded`` (an earlier copy of
    an id the page lists again)."""

    writes: tuple[Write, ...]  # one per provider event id, in page order
    deletes: tuple[str, ...]  # provider event ids to mark deleted (written after ``writes``)
    unchanged: int
    stale: int
    superseded: int
    ignored_deletions: int  # deletions that named no live event
    seen: frozenset[str]  # every provider event id the page upserts
    changes: PageChanges = PageChanges()

    @property
    def inserted(self) -> int:
        return sum(1 for write in self.writes if write.insert)

    @property
    def updated(self) -> int:
        return len(self.writes) - self.inserted

    @property
    def upserted(self) -> int:
        return len(self.writes)

    @property
    def deleted(self) -> int:
        return len(self.deletes)


def plan_page(page: EventPage, stored: Mapping[str, StoredEvent]) -> PagePlan:
    """Diff ``page`` against ``stored``: every mirrored event the page can touch, by provider
    event id (its upserts, its deletions, and the events of the series it deletes or replaces;
    an event missing from ``stored`` is taken as not mirrored)."""
    view = dict(stored)  # the mirror as the page is read, one upsert at a time
    writes: dict[str, Write] = {}
    unchanged = stale = superseded = 0
    for event in page.upserts:
        event_id = event.provider_event_id
        fields = mirror_fields(event)
        old = view.get(event_id)
        if old is not None and old.content_hash == fields["content_hash"] and not old.deleted:
            unchanged += 1
            continue
        if _newer(old, event):
            stale += 1
            continue
        earlier = writes.pop(event_id, None)
        superseded += earlier is not None
        writes[event_id] = Write(event, fields, insert=event_id not in stored)
        view[event_id] = StoredEvent(
            event_id, fields["content_hash"], event.updated_at, False, event.recurring_event_id
        )
    seen = frozenset(event.provider_event_id for event in page.upserts)
    gone, replaced = set(page.deletions), set(page.series_replaced)
    deletes = [
        event_id
        for event_id, held in view.items()
        if not held.deleted
        and (
            event_id in gone
            or held.recurring_event_id in gone
            or (held.recurring_event_id in replaced and event_id not in seen)
        )
    ]
    live = {
        key
        for event_id, held in view.items()
        if not held.deleted
        for key in (event_id, held.recurring_event_id)
    }
    return PagePlan(
        writes=tuple(writes.values()),
        deletes=tuple(deletes),
        unchanged=unchanged,
        stale=stale,
        superseded=superseded,
        ignored_deletions=sum(1 for event_id in gone if event_id not in live),
        seen=seen,
        changes=_changes(tuple(writes), tuple(deletes), stored),
    )


def _changes(
    written: tuple[str, ...], deleted: tuple[str, ...], stored: Mapping[str, StoredEvent]
) -> PageChanges:
    """:class:`PageChanges` of writing ``written`` then deleting ``deleted`` over ``stored``."""
    was_live = {event_id for event_id, held in stored.items() if not held.deleted}
    gone = set(deleted)
    return PageChanges(
        created=tuple(i for i in written if i not in gone and i not in was_live),
        updated=tuple(i for i in written if i not in gone and i in was_live),
        deleted=tuple(i for i in deleted if i in was_live),
    )


def _newer(old: StoredEvent | None, event: EventData) -> bool:
    """The mirror's copy was updated at the provider after the page's."""
    held = old.provider_updated_at if old is not None else None
    return held is not None and event.updated_at is not None and held > event.updated_at
