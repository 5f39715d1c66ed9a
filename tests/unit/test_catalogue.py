import pytest

from chronapilot.common.bus import catalogue
from chronapilot.common.bus.catalogue import (
    CATALOGUE,
    SyncReason,
    SyncRequested,
    UnknownEvent,
    parse,
    parse_as,
    wrap,
)
from chronapilot.common.bus.envelope import Envelope


def test_an_event_round_trips_through_its_envelope_bytes():
    event = SyncRequested(mode="full", reason=SyncReason.MANUAL, calendar_id=None)
    envelope = wrap(event, "con_1")
    assert envelope.key == b"con_1"
    again = Envelope.from_bytes(envelope.to_bytes())
    assert parse_as(again, SyncRequested) == event
    assert again.type == "sync.requested" and again.version == 1


def test_event_types_are_past_tense_facts_with_unique_names():
    assert len(CATALOGUE) == len(catalogue.EVENT_TYPES)
    for event_type in CATALOGUE:
        assert event_type.split(".")[-1].endswith(("ed", "removed"))


def test_an_older_version_is_upcast_to_the_current_one(monkeypatch):
    monkeypatch.setattr(SyncRequested, "VERSION", 2)
    monkeypatch.setitem(
        catalogue.UPCASTERS, ("sync.requested", 1), lambda d: {"mode": d["mode"], "reason": d["why"]}
    )
    old = Envelope(
        type="sync.requested", version=1, connection_id="con_1", data={"mode": "incremental", "why": "poll"}
    )
    assert parse(old) == SyncRequested(mode="incremental", reason=SyncReason.POLL)


def test_unknown_types_and_future_versions_are_refused():
    with pytest.raises(UnknownEvent):
        parse(Envelope(type="nope.happened", version=1, connection_id="c"))
    with pytest.raises(UnknownEvent):
        parse(Envelope(type="sync.requested", version=99, connection_id="c"))
