"""Stripe-style cursor pagination: over ids (which sort by creation time), newest first, for
what the store pages (:func:`page`); over a list already computed in its order, by an id of
the list (or where that id would sort, once it is gone), for what the API derives
(:func:`page_in_order`: occurrences)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Sequence
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


def _check_cursors(query: ListQuery) -> None:
    if query.starting_after and query.ending_before:
        raise ApiError(
            400, "parameter_invalid", "Use starting_after or ending_before, not both.", param="ending_before"
        )


def page_in_order(
    items: Sequence[T],
    query: ListQuery,
    *,
    key: Callable[[T], str],
    order: Callable[[T], Any] | None = None,
    place: Any = None,
) -> tuple[list[T], bool]:
    """A page of ``items`` (in their order) and whether more follow in that direction: the
    first ``limit`` after ``starting_after``, or the last ``limit`` before ``ending_before``.
    A cursor is the ``key`` of one of ``items``; one that is not (any more: the item was
    removed since the last page) pages from ``place``, where it would sort by ``order``
    (``items`` sorted by it). Without a place, 400."""
    _check_cursors(query)
    cursor = query.starting_after or query.ending_before
    param = "starting_after" if query.starting_after else "ending_before"
    at = next((i for i, item in enumerate(items) if key(item) == cursor), None) if cursor else None
    if cursor is not None and at is None:
        if order is None or place is None:
            raise ApiError(400, "parameter_invalid", f"{param} is not an id of this list.", param=param)
        side = bisect_right if query.starting_after else bisect_left
        at = side(items, place, key=order)
        if query.starting_after:
            at -= 1  # as if the cursor were the item before
    if query.ending_before:
        assert at is not None
        first = max(0, at - query.limit)
        return list(items[first:at]), first > 0
    first = at + 1 if at is not None else 0
    return list(items[first : first + query.limit]), first + query.limit < len(items)


async def page(
    source: PageSource,
    query: ListQuery,
    *,
    url: str,
    render: Callable[[Document], T],
) -> dict[str, Any]:
    _check_cursors(query)
    found = await source(
        limit=query.limit, starting_after=query.starting_after, ending_before=query.ending_before
    )
    return {
        "object": "list",
        "data": [render(d) for d in found.documents],
        "has_more": found.has_more,
        "url": url,
    }
