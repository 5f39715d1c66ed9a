"""Stripe-style cursor pagination over ids (which sort by creation time): newest first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from chronapilot.api.errors import ApiError
from chronapilot.api.schemas import ListQuery
from chronapilot.common.store import Document
from chronapilot.common.store.repository import Page

T = TypeVar("T")


class PageSource(Protocol):
    """A repository's page read with its filter bound, e.g.
    ``functools.partial(runtime.repos.users.page, {"application_id": ...})``."""

    def __call__(
        self, *, limit: int, starting_after: str | None, ending_before: str | None
    ) -> Awaitable[Page]: ...


async def page(
    source: PageSource,
    query: ListQuery,
    *,
    url: str,
    render: Callable[[Document], T],
) -> dict[str, Any]:
    if query.starting_after and query.ending_before:
        raise ApiError(
            400, "parameter_invalid", "Use starting_after or ending_before, not both.", param="ending_before"
        )
    found = await source(
        limit=query.limit, starting_after=query.starting_after, ending_before=query.ending_before
    )
    return {
        "object": "list",
        "data": [render(d) for d in found.documents],
        "has_more": found.has_more,
        "url": url,
    }
