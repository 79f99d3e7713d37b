"""The sliding window's Retry-After: whole seconds, at least 1, from the oldest failure."""

from __future__ import annotations

from labkit.auth.rate_limit import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_counts_from_the_oldest_failure_in_the_window() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window=60, clock=clock)
    window.add("a", clock.now)
    clock.now += 10
    window.add("a", clock.now)
    clock.now += 10
    assert window.retry_after("a") == 40  # the first failure leaves the window in 40 s


def test_retry_after_is_at_least_one_second_and_rounds_up() -> None:
    clock = Clock()
    window = SlidingWindow(limit=1, window=60, clock=clock)
    window.add("a", clock.now)
    clock.now += 59.5
    assert window.retry_after("a") == 1
    clock.now -= 1.25  # 1.75 s left: rounded up
    assert window.retry_after("a") == 2
