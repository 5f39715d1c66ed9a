"""Optimistic concurrency: update a document only if nobody changed it since it was read.

Documents that several processes update carry an integer ``version``. Read, decide, then
:func:`update_versioned` with the version read; the loser of a race gets
:class:`~chronapilot.common.errors.VersionConflict` and re-reads.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from chronapilot.common.errors import NotFound, VersionConflict
from chronapilot.common.store.client import Document, translate_errors


async def update_versioned(
    collection: AsyncCollection[Document],
    doc_id: str,
    expected_version: int,
    changes: dict[str, Any],
    *,
    unset: list[str] | None = None,
    session: AsyncClientSession | None = None,
) -> Document:
    """Apply ``$set: changes`` if the document is still at ``expected_version``; bump it.

    Returns the updated document. Raises :class:`NotFound` if the document does not exist,
    :class:`VersionConflict` if its version moved on.
    """
    update: dict[str, Any] = {"$set": changes, "$inc": {"version": 1}}
    if unset:
        update["$unset"] = dict.fromkeys(unset, "")
    with translate_errors():
        updated = await collection.find_one_and_update(
            {"_id": doc_id, "version": expected_version},
            update,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if updated is not None:
            return updated
        current = await collection.find_one({"_id": doc_id}, {"version": 1}, session=session)
    if current is None:
        raise NotFound(f"{collection.name} {doc_id} not found")
    raise VersionConflict(
        f"{collection.name} {doc_id} is at version {current.get('version')}, expected {expected_version}"
    )
