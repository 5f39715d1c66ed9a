"""The ``dead_letters`` collection: its only reader and writer.

One record per message a consumer group gave up on (:class:`~chronapilot.common.bus.ConsumerRunner`
writes it before the message's offset is committed), unique on (group, topic, partition,
offset), so a message dead-lettered again after a crash is still one record. The operator
lists, shows and replays them (``chronapilot dlq``); a replay goes to the group that failed
only, and the record follows it:

- ``held``: waiting for an operator (``attempts``, ``error_type``, ``error_message`` say why);
- ``replaying``: published to the replay topic for its group, not handled yet;
- ``replayed``: the group's handler succeeded on the replay (``replayed_at``).

A replay that fails again puts the record back to ``held`` with the new error (``replays``
counts the tries).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from chronapilot.common.errors import Conflict
from chronapilot.common.ids import new_id
from chronapilot.common.store.client import Document, translate_errors
from chronapilot.common.store.repository import Repository

HELD = "held"
REPLAYING = "replaying"
REPLAYED = "replayed"
STATUSES = (HELD, REPLAYING, REPLAYED)
PREFIX = "dlq"


class DeadLetters(Repository):
    COLLECTION = "dead_letters"

    async def record(
        self,
        *,
        group_id: str,
        topic: str,
        partition: int,
        offset: int,
        key: str | None,
        value: str,
        event_type: str,
        envelope_id: str | None,
        error_type: str,
        error_message: str,
        attempts: int,
        failed_at: datetime,
    ) -> str:
        """Hold a message ``group_id`` gave up on; its record's id (the existing one when this
        message was recorded before)."""
        where = {"group_id": group_id, "topic": topic, "partition": partition, "offset": offset}
        document: Document = {
            "_id": new_id(PREFIX),
            **where,
            "key": key,
            "value": value,
            "event_type": event_type,
            "envelope_id": envelope_id,
            "error_type": error_type,
            "error_message": error_message,
            "attempts": attempts,
            "failed_at": failed_at,
            "status": HELD,
            "replays": 0,
            "replayed_at": None,
        }
        try:
            with translate_errors():
                await self._collection.insert_one(document)
        except Conflict:
            with translate_errors():
                existing = await self._collection.find_one(where, {"_id": 1})
            if existing is None:
                raise
            return str(existing["_id"])
        return str(document["_id"])

    async def listed(
        self,
        *,
        topic: str | None = None,
        group_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[Document]:
        """Records matching the filters, newest first (without the message value)."""
        query: dict[str, Any] = {}
        if topic is not None:
            query["topic"] = topic
        if group_id is not None:
            query["group_id"] = group_id
        if status is not None:
            query["status"] = status
        with translate_errors():
            return await self._collection.find(query, {"value": 0}).sort("_id", -1).limit(limit).to_list()

    async def held_counts(self) -> dict[tuple[str, str], int]:
        """How many records are held per (topic, group): the console's panel and the
        ``chronapilot_dead_letters`` gauge."""
        with translate_errors():
            rows = await self._collection.aggregate(
                [
                    {"$match": {"status": HELD}},
                    {"$group": {"_id": {"topic": "$topic", "group_id": "$group_id"}, "count": {"$sum": 1}}},
                ]
            )
            counted = await rows.to_list()
        return {(row["_id"]["topic"], row["_id"]["group_id"]): int(row["count"]) for row in counted}

    async def start_replay(self, letter_id: str, *, now: datetime) -> Document | None:
        """Move a held record to ``replaying`` (one caller wins); the record, or None when it is
        not held."""
        with translate_errors():
            return await self._collection.find_one_and_update(
                {"_id": letter_id, "status": HELD},
                {"$set": {"status": REPLAYING, "replay_requested_at": now}, "$inc": {"replays": 1}},
                return_document=ReturnDocument.AFTER,
            )

    async def abandon_replay(self, letter_id: str) -> None:
        """The replay could not be published: the record is held again."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": letter_id, "status": REPLAYING}, {"$set": {"status": HELD}, "$inc": {"replays": -1}}
            )

    async def mark_replayed(self, letter_id: str, *, now: datetime) -> None:
        """The group's handler succeeded on the replay."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": letter_id}, {"$set": {"status": REPLAYED, "replayed_at": now}}
            )

    async def hold_again(
        self, letter_id: str, *, error_type: str, error_message: str, attempts: int, failed_at: datetime
    ) -> None:
        """The replay failed too: held again, with the new error."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": letter_id},
                {
                    "$set": {
                        "status": HELD,
                        "error_type": error_type,
                        "error_message": error_message,
                        "attempts": attempts,
                        "failed_at": failed_at,
                    }
                },
            )

    async def held_of(self, group_id: str, *, topic: str | None = None) -> list[str]:
        """The ids of ``group_id``'s held records (of ``topic``), oldest first."""
        query: dict[str, Any] = {"group_id": group_id, "status": HELD}
        if topic is not None:
            query["topic"] = topic
        with translate_errors():
            rows = await self._collection.find(query, {"_id": 1}).sort("_id", 1).to_list()
        return [str(row["_id"]) for row in rows]

    async def in_order(self, letter_ids: Iterable[str]) -> list[Document]:
        ids = list(letter_ids)
        with translate_errors():
            found = {doc["_id"]: doc for doc in await self._collection.find({"_id": {"$in": ids}}).to_list()}
        return [found[i] for i in ids if i in found]
