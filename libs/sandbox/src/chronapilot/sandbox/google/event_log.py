"""One calendar's events, ordered by a monotonically increasing change sequence.

Every write gives the event the next sequence number and appends ``(seq, id)`` to an
append-only log, so "everything changed after ``n``" is a binary search plus a walk, and a full
listing is a walk of the same log up to the sequence seen when the listing started. Log entries
superseded by a later change of the same event are skipped and compacted away when they
outnumber the live ones. A sync token is the encoded sequence (plus the log's epoch, so a token
from another calendar or an earlier run is unknown); :meth:`EventLog.expire_sync_tokens` changes the epoch,
so every token issued so far answers 410.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class UnknownSyncToken(Exception):
    """A sync token that is malformed, from another calendar, or expired."""


@dataclass
class StoredEvent:
    """An event as served (``resource``) and the sequence number of its last change."""

    resource: dict[str, Any]
    seq: int
    span: tuple[datetime, datetime] | None = field(default=None, compare=False, repr=False)
    _encoded: bytes | None = field(default=None, compare=False, repr=False)

    def encoded(self) -> bytes:
        """The resource as compact JSON, computed once (stored resources never change)."""
        if self._encoded is None:
            self._encoded = json.dumps(self.resource, separators=(",", ":")).encode()
        return self._encoded

    @property
    def id(self) -> str:
        """The event id."""
        return str(self.resource["id"])

    @property
    def cancelled(self) -> bool:
        """True for deletions and cancelled instances."""
        return self.resource.get("status") == "cancelled"


class EventLog:
    """Events of one calendar with their change history."""

    def __init__(self, epoch: str | None = None) -> None:
        self.epoch = epoch or secrets.token_hex(6)
        self.seq = 0
        self.events: dict[str, StoredEvent] = {}
        self.series_ids: set[str] = set()
        self._log_seqs: list[int] = []
        self._log_ids: list[str] = []

    def get(self, event_id: str) -> StoredEvent | None:
        """The event with ``event_id``, deleted or not."""
        return self.events.get(event_id)

    def put(self, resource: dict[str, Any]) -> StoredEvent:
        """Store a new version of an event as the latest change."""
        self.seq += 1
        stored = StoredEvent(resource, self.seq)
        if "recurrence" in resource:
            self.series_ids.add(stored.id)
        self.events[stored.id] = stored
        self._log_seqs.append(stored.seq)
        self._log_ids.append(stored.id)
        if len(self._log_seqs) > 2 * len(self.events) + 64:
            self._compact()
        return stored

    def last_changed(self) -> StoredEvent | None:
        """The most recently changed event (the log's last entry is always live)."""
        return self.events[self._log_ids[-1]] if self._log_ids else None

    def restore(self, stored: StoredEvent) -> None:
        """Re-insert an event loaded from a state file (call in increasing ``seq`` order)."""
        self.events[stored.id] = stored
        if "recurrence" in stored.resource:
            self.series_ids.add(stored.id)
        self._log_seqs.append(stored.seq)
        self._log_ids.append(stored.id)
        self.seq = max(self.seq, stored.seq)

    def changed_after(self, after_seq: int, upto_seq: int) -> Iterator[StoredEvent]:
        """Events whose latest change lies in ``(after_seq, upto_seq]``, oldest change first."""
        start = bisect_right(self._log_seqs, after_seq)
        for index in range(start, len(self._log_seqs)):
            seq = self._log_seqs[index]
            if seq > upto_seq:
                return
            stored = self.events[self._log_ids[index]]
            if stored.seq == seq:
                yield stored

    def sync_token(self, seq: int) -> str:
        """The opaque token for "everything up to ``seq``"."""
        raw = f"{self.epoch}:{seq}".encode()
        return base64.urlsafe_b64encode(raw).decode()

    def parse_sync_token(self, token: str) -> int:
        """The sequence in ``token``; raises :class:`UnknownSyncToken` if unusable here."""
        try:
            epoch, _, seq_text = base64.urlsafe_b64decode(token.encode()).decode().rpartition(":")
            seq = int(seq_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise UnknownSyncToken(token) from None
        if epoch != self.epoch or not 0 <= seq <= self.seq:
            raise UnknownSyncToken(token)
        return seq

    def expire_sync_tokens(self) -> None:
        """Make every sync (and page) token issued so far unusable: the next incremental sync gets 410."""
        self.epoch = secrets.token_hex(6)

    def _compact(self) -> None:
        live = sorted((stored.seq, stored.id) for stored in self.events.values())
        self._log_seqs = [seq for seq, _ in live]
        self._log_ids = [event_id for _, event_id in live]

    def to_json(self) -> dict[str, Any]:
        """State-file form."""
        ordered = sorted(self.events.values(), key=lambda stored: stored.seq)
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "events": [{"seq": stored.seq, "resource": stored.resource} for stored in ordered],
            "series_ids": sorted(self.series_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EventLog:
        """Rebuild from :meth:`to_json`."""
        log = cls(data["epoch"])
        for item in data["events"]:
            log.restore(StoredEvent(item["resource"], item["seq"]))
        log.seq = data["seq"]
        log.series_ids |= set(data.get("series_ids", []))
        return log
