"""Diffing a provider page against the mirror (plan_page): pure, no I/O."""

from __future__ import annotations

from datetime import timedelta

from chronapilot.common.mirror.plan import PageChanges, PagePlan, StoredEvent, plan_page
from chronapilot.common.models.event import mirror_fields
from chronapilot.common.providers.sync import EventData, EventPage

from helpers import SAMPLE_T0, sample_event

T0 = SAMPLE_T0
event = sample_event


def held(data: EventData, *, deleted: bool = False) -> StoredEvent:
    """What the mirror holds after writing ``data``."""
    fields = mirror_fields(data)
    return StoredEvent(
        data.provider_event_id, fields["content_hash"], data.updated_at, deleted, data.recurring_event_id
    )


def page(*upserts: EventData, deletions: tuple[str, ...] = (), replaced: tuple[str, ...] = ()) -> EventPage:
    return EventPage(upserts=upserts, deletions=deletions, next_cursor=None, series_replaced=replaced)


def mirror(*events: StoredEvent) -> dict[str, StoredEvent]:
    return {e.provider_event_id: e for e in events}


def written(plan: PagePlan) -> dict[str, str | None]:
    return {w.provider_event_id: w.event.title for w in plan.writes}


def test_a_new_event_is_inserted():
    plan = plan_page(page(event("a")), {})
    assert written(plan) == {"a": "standup"}
    assert [w.insert for w in plan.writes] == [True]
    assert (plan.inserted, plan.updated, plan.unchanged, plan.stale, plan.deleted) == (1, 0, 0, 0, 0)
    assert plan.writes[0].fields == mirror_fields(event("a"))


def test_a_changed_event_is_updated_whatever_changed_in_its_content():
    stored = mirror(held(event("a", "standup")), held(event("b", "review")))
    renamed = event("a", "daily standup", updated=T0 + timedelta(minutes=5))
    cancelled = event("b", "review", status="cancelled")  # same title and updated time
    plan = plan_page(page(renamed, cancelled), stored)
    assert written(plan) == {"a": "daily standup", "b": "review"}
    assert [w.insert for w in plan.writes] == [False, False]
    assert (plan.inserted, plan.updated, plan.upserted) == (0, 2, 2)


def test_an_unchanged_event_is_left_alone():
    stored = mirror(held(event("a")))
    plan = plan_page(page(event("a")), stored)
    assert plan.writes == ()
    assert plan.unchanged == 1
    assert plan.seen == {"a"}


def test_a_stale_copy_never_overwrites_a_newer_one():
    stored = mirror(held(event("a", "new title", updated=T0 + timedelta(hours=1))))
    plan = plan_page(page(event("a", "old title", updated=T0)), stored)
    assert plan.writes == ()
    assert plan.stale == 1


def test_without_updated_times_the_page_wins():
    stored = mirror(held(event("a", "old", updated=None)))
    plan = plan_page(page(event("a", "new", updated=None)), stored)
    assert written(plan) == {"a": "new"}


def test_an_event_deleted_in_the_mirror_is_restored_even_with_the_same_content():
    stored = mirror(held(event("a"), deleted=True))
    plan = plan_page(page(event("a")), stored)
    assert written(plan) == {"a": "standup"}
    assert plan.updated == 1


def test_deleting_a_stored_event_marks_it_deleted():
    stored = mirror(held(event("a")), held(event("b")))
    plan = plan_page(page(deletions=("a",)), stored)
    assert plan.deletes == ("a",)
    assert (plan.deleted, plan.ignored_deletions) == (1, 0)


def test_deleting_an_unknown_or_already_deleted_event_changes_nothing():
    stored = mirror(held(event("gone"), deleted=True))
    plan = plan_page(page(deletions=("never-seen", "gone")), stored)
    assert plan.deletes == ()
    assert (plan.deleted, plan.ignored_deletions) == (0, 2)


def test_an_id_listed_twice_is_written_once_and_the_later_copy_wins():
    plan = plan_page(page(event("a", "first"), event("a", "second")), {})
    assert written(plan) == {"a": "second"}
    assert [w.insert for w in plan.writes] == [True]
    assert (plan.upserted, plan.superseded, plan.unchanged, plan.stale) == (1, 1, 0, 0)


def test_an_id_listed_twice_keeps_the_newer_copy_and_counts_a_repeat_as_unchanged():
    newer, older = event("a", "newer", updated=T0 + timedelta(hours=1)), event("a", "older", updated=T0)
    plan = plan_page(page(newer, older), {})
    assert written(plan) == {"a": "newer"}
    assert (plan.upserted, plan.stale) == (1, 1)
    repeated = plan_page(page(event("a"), event("a")), {})
    assert (repeated.upserted, repeated.unchanged, repeated.superseded) == (1, 1, 0)


def test_deleting_a_series_master_deletes_its_instances_including_ones_this_page_wrote():
    stored = mirror(
        held(event("m")),
        held(event("m_1", series="m")),
        held(event("m_2", series="m"), deleted=True),
        held(event("other")),
    )
    plan = plan_page(page(event("m_3", series="m"), deletions=("m",)), stored)
    assert written(plan) == {"m_3": "standup"}  # written first, then marked deleted
    assert set(plan.deletes) == {"m", "m_1", "m_3"}
    assert plan.deleted == 3


def test_deleting_a_series_no_longer_mirrored_as_a_master_deletes_its_instances():
    """A CalDAV deletion names the resource; the mirror may hold only its overrides."""
    stored = mirror(held(event("/cal/x.ics#20260316T080000Z", series="/cal/x.ics")))
    plan = plan_page(page(deletions=("/cal/x.ics",)), stored)
    assert plan.deletes == ("/cal/x.ics#20260316T080000Z",)
    assert plan.ignored_deletions == 0


def test_a_replaced_series_loses_the_exceptions_the_page_does_not_list():
    stored = mirror(
        held(event("s")),
        held(event("s#1", series="s")),
        held(event("s#2", series="s")),
        held(event("t#1", series="t")),
    )
    plan = plan_page(page(event("s"), event("s#1", "moved"), replaced=("s",)), stored)
    assert written(plan) == {"s#1": "moved"}
    assert plan.deletes == ("s#2",)  # the master and listed exceptions stay; other series too
    assert plan.unchanged == 1


def test_the_counts_add_up_over_a_mixed_page():
    stored = mirror(
        held(event("same")),
        held(event("newer", updated=T0 + timedelta(hours=1))),
        held(event("edit")),
        held(event("drop")),
    )
    plan = plan_page(
        page(
            event("same"),
            event("newer", "older copy"),
            event("edit", "edited", updated=T0 + timedelta(minutes=1)),
            event("fresh"),
            event("fresh", "fresh again"),
            deletions=("drop", "unknown"),
        ),
        stored,
    )
    assert written(plan) == {"edit": "edited", "fresh": "fresh again"}
    assert (plan.inserted, plan.updated, plan.unchanged, plan.stale, plan.superseded) == (1, 1, 1, 1, 1)
    assert (plan.deleted, plan.ignored_deletions) == (1, 1)
    assert plan.seen == {"same", "newer", "edit", "fresh"}
    assert plan.upserted + plan.unchanged + plan.stale + plan.superseded == 5  # every upsert once


def test_planning_reads_nothing_but_its_arguments():
    stored = mirror(held(event("a")))
    before = dict(stored)
    first = plan_page(page(event("a", "x"), deletions=("a",)), stored)
    assert stored == before
    assert plan_page(page(event("a", "x"), deletions=("a",)), stored) == first


def test_what_a_plan_changes_is_said_as_customers_are_told_it():
    stored = mirror(held(event("a")), held(event("b"), deleted=True), held(event("c")), held(event("f")))
    later = T0 + timedelta(minutes=5)
    plan = plan_page(
        page(
            event("a", "renamed", updated=later),  # held live: updated
            event("b", updated=later),  # held deleted: created again
            event("d"),  # not held: created
            event("e"),  # not held, written then deleted by the same page: nothing
            event("f", "renamed", updated=later),  # held live, written then deleted: deleted
            deletions=("c", "e", "f"),  # c: held live, deleted
        ),
        stored,
    )
    assert plan.changes == PageChanges(created=("b", "d"), updated=("a",), deleted=("c", "f"))


def test_a_plan_that_writes_nothing_changes_nothing():
    stored = mirror(held(event("a")), held(event("b"), deleted=True))
    plan = plan_page(page(event("a"), deletions=("b", "never")), stored)
    assert plan.writes == () and plan.deletes == ()
    assert not plan.changes
