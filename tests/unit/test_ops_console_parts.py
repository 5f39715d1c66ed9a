"""The ops console's pure parts: chart series from samples, the SVG they draw, and the token
gate's sessions and CSRF tokens."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from chronapilot.ops.console.auth import Gate
from chronapilot.ops.console.charts import series, svg
from chronapilot.ops.console.views import when

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def sample(seconds: int, **values: float) -> dict:
    return {"at": T0 + timedelta(seconds=seconds), "values": values}


def chart(samples: list[dict], key: str) -> list[tuple[datetime, float]]:
    return next(c for c in series(samples) if c.key == key).points


def test_a_counter_becomes_a_rate_and_a_reset_gives_no_point():
    samples = [
        sample(0, webhook_notifications_total=10),
        sample(30, webhook_notifications_total=70),
        sample(60, webhook_notifications_total=5),  # a process restarted
        sample(90, webhook_notifications_total=35),
    ]
    assert chart(samples, "notifications") == [
        (T0 + timedelta(seconds=30), 2.0),
        (T0 + timedelta(seconds=90), 1.0),
    ]


def test_the_mean_sync_latency_is_the_sum_increase_over_the_count_increase():
    samples = [
        sample(0, sync_seconds_sum=1.0, sync_seconds_count=2),
        sample(30, sync_seconds_sum=4.0, sync_seconds_count=8),
        sample(60, sync_seconds_sum=4.0, sync_seconds_count=8),  # no sync: no point, not a zero
    ]
    assert chart(samples, "sync_latency") == [(T0 + timedelta(seconds=30), 0.5)]


def test_a_chart_without_samples_says_so_and_one_with_them_draws_a_line_with_its_last_value():
    empty = next(c for c in series([]) if c.key == "staleness")
    assert "no samples yet" in svg(empty)
    drawn = next(
        c for c in series([sample(0, staleness_s=10), sample(30, staleness_s=40)]) if c.key == "staleness"
    )
    assert "<polyline" in drawn.svg and "last 40.0s" in drawn.svg and "<script" not in drawn.svg


def test_a_session_is_signed_expires_and_its_csrf_token_is_bound_to_it():
    gate = Gate.build("the-token", session_ttl_s=60)
    session = gate.new_session()
    assert gate.session_ok(session)
    issued, nonce, signature = session.split(".")
    assert not gate.session_ok(f"{int(issued) + 1}.{nonce}.{signature}")
    assert not Gate.build("another-token", session_ttl_s=60).session_ok(session)
    old = Gate.build("the-token", session_ttl_s=60)
    stale = f"{int(time.time()) - 120}.{nonce}"
    assert not old.session_ok(f"{stale}.{old._sign('session', stale)}")
    assert gate.csrf_ok(session, gate.csrf_token(session))
    assert not gate.csrf_ok(gate.new_session(), gate.csrf_token(session))
    assert not gate.csrf_ok(None, gate.csrf_token(session))
    assert gate.token_matches("the-token") and not gate.token_matches("the-token ")


def test_times_read_as_ago_or_to_come():
    assert when(None) == "never"
    assert when(T0, T0 + timedelta(minutes=5)).endswith("(5m ago)")
    assert when(T0 + timedelta(seconds=30), T0).endswith("(in 30s)")
