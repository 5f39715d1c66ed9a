"""Every value sealed with :class:`~chronapilot.common.crypto.TokenCipher`, where it is kept, and
re-sealing them all under the active key (``chronapilot credentials reseal``).

Sealed values, with the associated data each is bound to:

- ``credentials``: ``access_token``, ``refresh_token``, ``password`` (the connection id);
- ``webhook_endpoints``: ``secrets[].secret`` (``webhook_endpoint:<endpoint id>``);
- ``idempotency_keys``: ``body``, an answer replayed to retries (the record id);
- ``oauth_states``: ``code_verifier``, a consent session's PKCE verifier (the session id).

A re-seal changes each document by compare-and-swap on the ciphertexts it read: a concurrent
writer (a token refresh, a secret rotation) wins, and the document is read again and re-sealed
from what that writer stored. Nothing else in the document moves (the credentials' ``version``
stays, so a refresh in flight still stores its tokens). Values already under the active key are
left alone, so a re-seal can be stopped and run again, and a second run finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from chronapilot.common.crypto import TokenCipher
from chronapilot.common.errors import CryptoError
from chronapilot.common.store.client import Document, Store, translate_errors
from chronapilot.common.store.webhook_endpoints import secret_associated_data

_ATTEMPTS = 10  # reads of one document racing with its writers before it is reported failed
_FAILURES_LISTED = 20


def _own_id(document_id: str) -> str:
    return document_id


@dataclass(frozen=True)
class SealedCollection:
    """Where a collection keeps sealed values: top-level ``fields``, and ``element`` of each item
    of the array ``array``; all bound to ``associated_data(document id)``."""

    name: str
    fields: tuple[str, ...] = ()
    array: str | None = None
    element: str | None = None
    associated_data: Callable[[str], str] = _own_id

    def projection(self) -> dict[str, int]:
        return {name: 1 for name in (*self.fields, *([self.array] if self.array else []))}

    def values(self, document: Document) -> dict[str, str]:
        """The sealed values of ``document`` by path (``secrets.0.secret`` for an array item)."""
        found = {name: document[name] for name in self.fields if isinstance(document.get(name), str)}
        if self.array and self.element:
            for index, item in enumerate(document.get(self.array) or []):
                if isinstance(item, dict) and isinstance(item.get(self.element), str):
                    found[f"{self.array}.{index}.{self.element}"] = item[self.element]
        return found


SEALED: tuple[SealedCollection, ...] = (
    SealedCollection("credentials", fields=("access_token", "refresh_token", "password")),
    SealedCollection(
        "webhook_endpoints", array="secrets", element="secret", associated_data=secret_associated_data
    ),
    SealedCollection("idempotency_keys", fields=("body",)),
    SealedCollection("oauth_states", fields=("code_verifier",)),
)


@dataclass
class ResealCount:
    """What a re-seal found in one collection (``resealed``: documents changed, or in a dry run
    to be changed)."""

    collection: str
    documents: int = 0
    current: int = 0
    resealed: int = 0
    values: int = 0
    conflicts: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Resealer:
    """Re-seals every sealed value under ``cipher``'s active key."""

    def __init__(self, store: Store, cipher: TokenCipher, *, dry_run: bool = False) -> None:
        self._db = store.db
        self._cipher = cipher
        self._dry_run = dry_run

    async def reseal_all(self) -> list[ResealCount]:
        return [await self.reseal(spec) for spec in SEALED]

    async def reseal(self, spec: SealedCollection) -> ResealCount:
        count = ResealCount(spec.name)
        with translate_errors():
            cursor = self._db[spec.name].find({}, spec.projection()).sort("_id", 1)
            async for document in cursor:
                count.documents += 1
                await self.reseal_document(spec, document, count)
        return count

    async def reseal_document(self, spec: SealedCollection, document: Document, count: ResealCount) -> None:
        """Re-seal one document as read (``document``), re-reading it after a lost race."""
        for attempt in range(_ATTEMPTS):
            try:
                changes = self._changes(spec, document)
            except CryptoError as exc:
                self._fail(count, document["_id"], exc.message)
                return
            if not changes:
                if attempt == 0:
                    count.current += 1
                else:
                    count.resealed += 1  # the writer that won stored it under the active key
                return
            if self._dry_run:
                count.resealed += 1
                count.values += len(changes)
                return
            if await self._swap(spec.name, document["_id"], changes):
                count.resealed += 1
                count.values += len(changes)
                return
            count.conflicts += 1
            with translate_errors():
                reread = await self._db[spec.name].find_one({"_id": document["_id"]}, spec.projection())
            if reread is None:
                return  # deleted meanwhile: nothing left to re-seal
            document = reread
        self._fail(count, document["_id"], f"still changing after {_ATTEMPTS} attempts")

    def _changes(self, spec: SealedCollection, document: Document) -> dict[str, tuple[str, str]]:
        """``{path: (ciphertext read, the same value sealed under the active key)}``."""
        associated = spec.associated_data(str(document["_id"]))
        return {
            path: (sealed, self._cipher.rotate(sealed, associated_data=associated))
            for path, sealed in spec.values(document).items()
            if not self._cipher.is_current(sealed)
        }

    async def _swap(self, collection: str, document_id: Any, changes: dict[str, tuple[str, str]]) -> bool:
        """Store the new ciphertexts if every old one is still there (compare-and-swap)."""
        query: dict[str, Any] = {"_id": document_id}
        query |= {path: old for path, (old, _) in changes.items()}
        with translate_errors():
            result = await self._db[collection].update_one(
                query, {"$set": {path: new for path, (_, new) in changes.items()}}
            )
        return result.matched_count == 1

    @staticmethod
    def _fail(count: ResealCount, document_id: Any, reason: str) -> None:
        count.failed += 1
        if len(count.failures) < _FAILURES_LISTED:
            count.failures.append(f"{document_id}: {reason}")
