"""Paging a list the API computes (occurrences) by an id of the list: forward with
``starting_after``, backward with ``ending_before``, a cursor not in the list refused."""

from __future__ import annotations

import pytest

from chronapilot.api.errors import ApiError
from chronapilot.api.pagination import page_in_order
from chronapilot.api.schemas import ListQuery

ITEMS = [f"occ_{n}" for n in range(7)]


def paged(**query: object) -> tuple[list[str], bool]:
    return page_in_order(ITEMS, ListQuery.model_validate(query), key=lambda item: item)


def test_forward_pages_cover_the_list_once_in_order():
    seen, cursor = [], None
    while True:
        page, more = paged(limit=3, **({"starting_after": cursor} if cursor else {}))
        seen += page
        if not more:
            break
        cursor = page[-1]
    assert seen == ITEMS


def test_ending_before_gives_the_page_before_the_cursor():
    assert paged(limit=3, ending_before="occ_5") == (["occ_2", "occ_3", "occ_4"], True)
    assert paged(limit=3, ending_before="occ_2") == (["occ_0", "occ_1"], False)


def test_the_last_page_says_no_more():
    assert paged(limit=7) == (ITEMS, False)
    assert paged(limit=3, starting_after="occ_6") == ([], False)


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
def test_a_cursor_that_is_not_in_the_list_is_refused(cursor):
    with pytest.raises(ApiError) as raised:
        paged(limit=3, **{cursor: "occ_99"})
    assert (raised.value.status, raised.value.param) == (400, cursor)
