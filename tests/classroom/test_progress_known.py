"""The application server's memory of learners' progress records: pure bookkeeping."""

from __future__ import annotations

import asyncio

import pytest

from labkit.classroom.progress_known import KnownRecords, UserLocks


def test_a_listing_replaces_ids_and_keeps_known_revisions() -> None:
    known = KnownRecords()
    records = known.of("alice")
    records.revisions = {"ex1": 7, "ex2": 9}
    assert not records.known_full(2)  # never listed: what it holds may be a part
    records.replace_listing({"ex1", "ex3"})
    assert records.revisions == {"ex1": 7, "ex3": None}  # ex2 was removed meanwhile
    assert records.known_full(2) and not records.known_full(3)


def test_past_the_bound_the_least_recently_used_learners_are_forgotten() -> None:
    known = KnownRecords(max_ids=10)
    for user in ("ann", "bob", "cid"):
        known.of(user).revisions = {f"ex{n}": n for n in range(2)}
        known.settle(user)
    assert known.remembered_ids == 9  # two ids and one learner each
    known.of("ann")  # ann is used again: bob is now the oldest
    known.of("dan").revisions = {"ex1": 1}
    known.settle("dan")
    assert "bob" not in known
    assert all(user in known for user in ("ann", "cid", "dan"))
    assert known.remembered_ids == 8


def test_one_learner_past_the_bound_alone_is_kept() -> None:
    known = KnownRecords(max_ids=3)
    known.of("ann").revisions = {f"ex{n}": n for n in range(5)}
    known.settle("ann")
    assert "ann" in known  # the learner being served is never the one forgotten
    known.of("bob")
    known.settle("bob")
    assert "ann" not in known and "bob" in known


def test_a_learner_forgotten_while_served_is_not_counted() -> None:
    known = KnownRecords(max_ids=100)
    records = known.of("ann")
    known.forget("ann")
    records.revisions["ex1"] = 1  # the report in flight goes on with its own copy
    known.settle("ann")
    assert "ann" not in known and known.remembered_ids == 0


def test_the_bound_must_allow_something() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        KnownRecords(max_ids=0)


def test_a_learners_lock_serialises_and_is_dropped_when_free() -> None:
    locks = UserLocks()
    order: list[str] = []

    async def hold(user: str, name: str, go: asyncio.Event) -> None:
        async with locks.hold(user):
            order.append(f"{name} in")
            await go.wait()
            order.append(f"{name} out")

    async def scenario() -> int:
        go = asyncio.Event()
        first = asyncio.create_task(hold("ann", "first", go))
        second = asyncio.create_task(hold("ann", "second", go))
        other = asyncio.create_task(hold("bob", "other", go))
        while len(order) < 2:  # first and other are in; second waits for first
            await asyncio.sleep(0)
        held = len(locks)
        go.set()
        await asyncio.gather(first, second, other)
        return held

    assert asyncio.run(scenario()) == 2
    assert order.index("second in") > order.index("first out")
    assert len(locks) == 0
