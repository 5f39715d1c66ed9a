"""Stripe-style cursor pagination over ids (which sort by creation time): newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

from chronapilot.api.errors import ApiError
from chronapilot.api.schemas import ListQuery
from chronapilot.common.store import Document

T = TypeVar("T")


async def page(
    collection: AsyncCollection[Document],
    query_filter: dict[str, Any],
    query: ListQuery,
    *,
    url: str,
    render: Callable[[Document], T],
) -> dict[str, Any]:
    if query.starting_after and query.ending_before:
        raise ApiError(
            400, "parameter_invalid", "Use starting_after or ending_before, not both.", param="ending_before"
        )
    flt = dict(query_filter)
    direction = -1
    if query.starting_after:
        flt["_id"] = {"$lt": query.starting_after}
    elif query.ending_before:
        flt["_id"] = {"$gt": query.ending_before}
        direction = 1
    docs = await collection.find(flt).sort("_id", direction).limit(query.limit + 1).to_list()
    has_more = len(docs) > query.limit
    docs = docs[: query.limit]
    if direction == 1:
        docs.reverse()
    return {"object": "list", "data": [render(d) for d in docs], "has_more": has_more, "url": url}
