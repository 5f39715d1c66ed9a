import pytest

from chronapilot.common.backoff import Backoff, retry_until


def test_delays_grow_exponentially_with_jitter_up_to_the_cap():
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling
    assert backoff.delay(0, retry_after=5.0) == 5.0


async def test_retry_until_gives_up_at_the_deadline_with_the_last_error():
    calls = 0

    async def failing():
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await retry_until(
            failing, deadline_s=0.3, backoff=Backoff(base_s=0.05, cap_s=0.1), should_retry=lambda e: True
        )
    assert calls >= 2


async def test_retry_until_does_not_retry_what_it_should_not():
    async def failing():
        raise ValueError("bad")

    with pytest.raises(ValueError):
        await retry_until(
            failing, deadline_s=5, backoff=Backoff(), should_retry=lambda e: isinstance(e, ConnectionError)
        )
