"""The ``webhook_endpoints`` collection: its only reader and writer (document shape:
:mod:`chronapilot.common.webhooks`).

Secrets are stored sealed (:class:`~chronapilot.common.crypto.TokenCipher`, associated data the
endpoint id); this module never sees them in the clear. How many endpoints an application holds
is counted on the application (:meth:`Applications.reserve_endpoint_slot`) in the creating
transaction, so two concurrent creates cannot both take the last place under the cap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from chronapilot.common.clock import aware
from chronapilot.common.store.client import Document, Session, translate_errors
from chronapilot.common.store.repository import Repository

#: ``disabled_reason`` values: the endpoint answered 410, or kept failing for days.
GONE = "endpoint_gone"
FAILING = "failing"


def secret_associated_data(endpoint_id: str) -> str:
    """What a sealed secret of endpoint ``endpoint_id`` is bound to (it opens there only)."""
    return f"webhook_endpoint:{endpoint_id}"


class WebhookEndpoints(Repository):
    COLLECTION = "webhook_endpoints"

    async def insert(self, endpoint: Document, *, session: Session | None = None) -> None:
        with translate_errors(session):
            await self._collection.insert_one(endpoint, session=session)

    async def of_application(self, application_id: str, endpoint_id: str) -> Document | None:
        with translate_errors():
            return await self._collection.find_one({"_id": endpoint_id, "application_id": application_id})

    async def update(
        self, application_id: str, endpoint_id: str, fields: dict[str, Any], *, now: datetime
    ) -> Document | None:
        """Set ``fields`` (the customer's change); re-enabling (``disabled: False``) clears the
        reason and the failure streak. None when the endpoint is not the application's."""
        changes = {**fields, "updated_at": now}
        if fields.get("disabled") is False:
            changes |= {"disabled_reason": None, "failing_since": None}
        elif fields.get("disabled") is True:
            changes["disabled_reason"] = None
        with translate_errors():
            return await self._collection.find_one_and_update(
                {"_id": endpoint_id, "application_id": application_id},
                {"$set": changes},
                return_document=ReturnDocument.AFTER,
            )

    async def delete(self, application_id: str, endpoint_id: str, *, session: Session | None = None) -> bool:
        with translate_errors(session):
            result = await self._collection.delete_one(
                {"_id": endpoint_id, "application_id": application_id}, session=session
            )
        return result.deleted_count == 1

    async def rotate_secret(
        self,
        application_id: str,
        endpoint_id: str,
        sealed_secret: str,
        *,
        now: datetime,
        overlap: timedelta,
    ) -> Document | None:
        """Make ``sealed_secret`` the signing secret; the current one keeps signing for
        ``overlap`` (both signatures are sent), older ones are dropped."""
        with translate_errors():
            current = await self.of_application(application_id, endpoint_id)
            if current is None:
                return None
            kept = [
                {**s, "expires_at": now + overlap}
                for s in live_secrets(current, now)[:1]  # the newest stays valid for the overlap
            ]
            return await self._collection.find_one_and_update(
                {"_id": endpoint_id, "application_id": application_id},
                {
                    "$set": {
                        "secrets": [{"secret": sealed_secret, "created_at": now, "expires_at": None}, *kept],
                        "updated_at": now,
                    }
                },
                return_document=ReturnDocument.AFTER,
            )

    async def subscribed(self, application_id: str, event_type: str) -> list[Document]:
        """The application's enabled endpoints that take ``event_type`` (named or ``*``)."""
        with translate_errors():
            return await self._collection.find(
                {
                    "application_id": application_id,
                    "disabled": False,
                    "enabled_events": {"$in": [event_type, "*"]},
                }
            ).to_list()

    async def any_enabled(self, application_id: str) -> bool:
        """Whether the application has an enabled endpoint at all (most have none)."""
        with translate_errors():
            found = await self._collection.find_one(
                {"application_id": application_id, "disabled": False}, {"_id": 1}
            )
        return found is not None

    async def in_order(self, endpoint_ids: list[str]) -> dict[str, Document]:
        with translate_errors():
            docs = await self._collection.find({"_id": {"$in": endpoint_ids}}).to_list()
        return {doc["_id"]: doc for doc in docs}

    async def record_success(self, endpoint_id: str, *, now: datetime) -> None:
        """A 2xx ends a failure streak (written only when there is one)."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": endpoint_id, "failing_since": {"$ne": None}},
                {"$set": {"failing_since": None, "updated_at": now}},
            )

    async def record_failure(self, endpoint_id: str, *, now: datetime, disable_after: timedelta) -> bool:
        """A failed attempt: starts the streak, or disables the endpoint (reason ``failing``)
        once it has failed without a success for ``disable_after``. True when it disabled it."""
        with translate_errors():
            await self._collection.update_one(
                {"_id": endpoint_id, "failing_since": None}, {"$set": {"failing_since": now}}
            )
            result = await self._collection.update_one(
                {"_id": endpoint_id, "disabled": False, "failing_since": {"$lte": now - disable_after}},
                {"$set": {"disabled": True, "disabled_reason": FAILING, "updated_at": now}},
            )
        return result.modified_count == 1

    async def disable(self, endpoint_id: str, reason: str, *, now: datetime) -> bool:
        """Disable with ``reason`` (``endpoint_gone`` after a 410). True when it was enabled."""
        with translate_errors():
            result = await self._collection.update_one(
                {"_id": endpoint_id, "disabled": False},
                {"$set": {"disabled": True, "disabled_reason": reason, "updated_at": now}},
            )
        return result.modified_count == 1


def live_secrets(endpoint: Document, now: datetime) -> list[dict[str, Any]]:
    """The sealed secrets that sign now, the newest first (a rotated-out one until it expires)."""
    return [
        s for s in endpoint.get("secrets", []) if s.get("expires_at") is None or aware(s["expires_at"]) > now
    ]
