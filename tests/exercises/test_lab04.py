"""Notebook 04's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import itertools

import pytest

from labkit.exercises.lab04 import CacheKey, FreshCache
from labkit.server import MemoryCache
from tests.exercises.checking import assert_not_yet, run_check


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (MemoryCache(ttl=5, max_entries=100), "1.05 s after the reply was cached it still came"),
        (MemoryCache(ttl=0.5, max_entries=100), "0.95 s after the reply was cached it was gone"),
        (MemoryCache(ttl=0.9, max_entries=100), "0.95 s after the reply was cached it was gone"),
        (MemoryCache(ttl=1, max_entries=10), "after 99 other replies the first was no longer"),
        (MemoryCache(ttl=1), "after 100 newer replies the first was still cached"),
        (1.0, "fresh_cache is a float; make it a `MemoryCache(...)`"),
    ],
    ids=["5 s", "half a second", "just short", "too few entries", "unbounded", "a number"],
)
def test_fresh_cache_wrong(answer: object, says: str) -> None:
    assert_not_yet(run_check(FreshCache(), answer), says)


def test_a_cache_already_used_is_checked_afresh() -> None:
    cache = MemoryCache(ttl=1, max_entries=100)
    assert run_check(FreshCache(), cache).correct
    assert run_check(FreshCache(), cache).correct


def test_the_check_moves_the_cache_clock_and_gives_it_back() -> None:
    """No waiting: the check sets the cache's own clock, then restores the learner's."""
    ticks: list[float] = []

    def learners_clock() -> float:
        ticks.append(0.0)
        return 1000.0 + len(ticks)

    cache = MemoryCache(ttl=1, max_entries=100, clock=learners_clock)
    assert run_check(FreshCache(), cache).correct
    assert ticks == [], "the check used its own clock"
    assert cache._clock is learners_clock


calls = itertools.count()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda user, message: message, "bob got the reply cached for alice"),
        (lambda user, message: user, "alice asking 'hello' got her reply to 'hi'"),
        (lambda user, message: user + message, "user 'a' asking 'bc' got the reply cached"),
        (lambda user, message: f"{user}.{message}.{next(calls)}", "alice asking 'hi' twice"),
        (lambda user, message: (user, message), "returned a tuple; return a str"),
    ],
    ids=["message only", "user only", "no separator", "never the same", "a tuple"],
)
def test_cache_key_wrong(answer: object, says: str) -> None:
    assert_not_yet(run_check(CacheKey(), answer), says)
