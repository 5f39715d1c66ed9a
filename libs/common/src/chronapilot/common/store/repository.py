"""What every repository shares: its collection, error translation, reads by id, and the
cursor pages the API lists with.

A repository is the only code that touches its collection: services call its methods (named
for what they mean, taking and returning plain values or the project's models) and never see
PyMongo. Every method translates PyMongo's errors (:func:`translate_errors`, given the
method's ``session`` so a transaction can still be retried) into
:mod:`chronapilot.common.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pymongo.asynchronous.collection import AsyncCollection

from chronapilot.common.store.client import Document, Session, Store, translate_errors


@dataclass(frozen=True)
class Page:
    """One page of documents, in the order asked for, and whether more follow."""

    documents: list[Document]
    has_more: bool


class Repository:
    """The base of a repository over one collection (``COLLECTION``)."""

    COLLECTION: ClassVar[str]

    def __init__(self, store: Store) -> None:
        self._store = store
        self._collection = store.db[self.COLLECTION]

    async def get(self, document_id: str, *, session: Session | None = None) -> Document | None:
        with translate_errors(session):
            return await self._collection.find_one({"_id": document_id}, session=session)

    async def page(
        self,
        query_filter: dict[str, Any],
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Page:
        """A page of at most ``limit`` documents by id (ids sort by creation time), newest first:
        those older than ``starting_after``, or newer than ``ending_before``."""
        return await find_page(
            self._collection,
            query_filter,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )


async def find_page(
    collection: AsyncCollection[Document],
    query_filter: dict[str, Any],
    *,
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Page:
    """:meth:`Repository.page` over any collection (the connections' owner lists with it too)."""
    flt = dict(query_filter)
    direction = -1
    if starting_after:
        flt["_id"] = {"$lt": starting_after}
    elif ending_before:
        flt["_id"] = {"$gt": ending_before}
        direction = 1
    with translate_errors():
        docs = await collection.find(flt).sort("_id", direction).limit(limit + 1).to_list()
    has_more = len(docs) > limit
    docs = docs[:limit]
    if direction == 1:
        docs.reverse()
    return Page(docs, has_more)
