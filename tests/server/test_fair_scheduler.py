"""The fair scheduler's policy, as pure logic: users in turn, bounds per user."""

from __future__ import annotations

import asyncio

from labkit.server.fair import FairScheduler


def test_users_are_served_in_turn_not_in_arrival_order() -> None:
    order: list[str] = []

    async def scenario() -> None:
        scheduler = FairScheduler(1, 1, 100, 100)

        def job(name: str):  # type: ignore[no-untyped-def]
            async def run() -> None:
                order.append(name)

            return run

        for n in range(4):
            assert scheduler.submit("alice", job(f"a{n}"), job("refused"))
        for n in range(2):
            assert scheduler.submit("bob", job(f"b{n}"), job("refused"))
        scheduler.start()
        await scheduler.wait_empty()
        await scheduler.close()

    asyncio.run(scenario())
    assert order == ["a0", "b0", "a1", "b1", "a2", "a3"]


def test_past_the_queue_bound_the_refusal_runs_even_while_the_handlers_are_taken() -> None:
    ran: list[str] = []

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        scheduler = FairScheduler(4, 1, 2, 1)
        gate = asyncio.Event()

        async def held() -> None:
            await gate.wait()
            ran.append("held")

        async def refused() -> None:
            ran.append("busy")

        scheduler.start()
        assert scheduler.submit("alice", held, refused)
        while scheduler.depths():  # the held job has left the queue for a worker
            await asyncio.sleep(0)
        assert scheduler.submit("alice", held, refused)
        assert scheduler.submit("alice", held, refused)
        assert scheduler.submit("alice", held, refused)  # deferred busy answer
        # Past the queue bound and the room for deferred answers: the caller answers.
        assert not scheduler.submit("alice", held, refused)
        depths = scheduler.depths()
        while "busy" not in ran:
            await asyncio.sleep(0)
        gate.set()
        await scheduler.wait_empty()
        await scheduler.close()
        return depths, scheduler.rejected

    depths, rejected = asyncio.run(scenario())
    assert depths == {"alice": 2}
    assert rejected == {"alice": 2}
    assert ran == ["busy", "held", "held", "held"]
