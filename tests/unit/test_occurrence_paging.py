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


# -- a cursor gone from the list between two calls --------------------------------------------

PLACED = [(1, "a"), (2, "b"), (2, "d"), (3, "e"), (4, "f")]


def paged_from(place: tuple[int, str] | None, **query: object) -> tuple[list[tuple[int, str]], bool]:
    return page_in_order(
        PLACED,
        ListQuery.model_validate(query),
        key=lambda item: item[1],
        order=lambda item: item,
        place=place,
    )


def test_a_cursor_no_longer_in_the_list_resumes_at_its_place():
    """The occurrence the cursor names was cancelled or moved out since the last page: the
    next page starts after where it was, the previous one ends before it."""
    assert paged_from((2, "c"), limit=2, starting_after="c") == ([(2, "d"), (3, "e")], True)
    assert paged_from((2, "c"), limit=2, ending_before="c") == ([(1, "a"), (2, "b")], False)
    assert paged_from((9, "z"), limit=2, starting_after="z") == ([], False)
    assert paged_from((0, "0"), limit=2, ending_before="0") == ([], False)


def test_a_cursor_in_the_list_is_used_as_such_whatever_place_is_given():
    assert paged_from((0, "0"), limit=2, starting_after="b") == ([(2, "d"), (3, "e")], True)


def test_a_cursor_with_no_place_and_not_in_the_list_is_refused():
    with pytest.raises(ApiError) as raised:
        paged_from(None, limit=2, starting_after="c")
    assert (raised.value.status, raised.value.param) == (400, "starting_after")
