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


def test_jobs_that_do_not_wait_run_on_one_worker_and_a_waiting_job_hands_over() -> None:
    """Handlers that finish at once wake no second worker; one that waits lets another go on."""
    workers: dict[str, asyncio.Task[None] | None] = {}

    async def scenario() -> list[str]:
        scheduler = FairScheduler(4, 4, 100, 100)
        gate = asyncio.Event()
        order: list[str] = []

        def quick(name: str):  # type: ignore[no-untyped-def]
            async def run() -> None:
                workers[name] = asyncio.current_task()
                order.append(name)

            return run

        async def waits() -> None:
            workers["waits"] = asyncio.current_task()
            order.append("waits")
            await gate.wait()
            order.append("waits done")

        scheduler.start()
        await asyncio.sleep(0)  # every worker idle
        for n in range(5):
            assert scheduler.submit("alice", quick(f"q{n}"), quick("refused"))
        assert scheduler.submit("alice", waits, quick("refused"))
        for n in range(5, 8):
            assert scheduler.submit("alice", quick(f"q{n}"), quick("refused"))
        # The quick jobs after the waiting one are served while it still waits.
        while len(order) < 9:
            await asyncio.sleep(0)
        gate.set()
        await scheduler.wait_empty()
        await scheduler.close()
        return order

    order = asyncio.run(scenario())
    assert order == ["q0", "q1", "q2", "q3", "q4", "waits", "q5", "q6", "q7", "waits done"]
    first = {workers[f"q{n}"] for n in range(5)}
    assert first == {workers["waits"]}  # one worker ran everything up to the wait
    assert workers["q5"] is not workers["waits"]  # then another took over


def test_a_failing_or_cancelled_job_leaves_the_workers_running() -> None:
    async def scenario() -> tuple[list[str], bool]:
        scheduler = FairScheduler(2, 2, 100, 100)
        ran: list[str] = []
        never = asyncio.Event()

        async def fails_at_once() -> None:
            raise RuntimeError("at once")

        async def fails_after_waiting() -> None:
            await asyncio.sleep(0)
            raise RuntimeError("after waiting")

        async def fine() -> None:
            ran.append("fine")

        cancelled = False

        async def held() -> None:
            nonlocal cancelled
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled = True
                raise

        scheduler.start()
        for job in (fails_at_once, fine, fails_after_waiting, fine):
            assert scheduler.submit("alice", job, fine)
        await scheduler.wait_empty()
        assert scheduler.submit("alice", held, fine)
        while not scheduler.busy or scheduler.depths():
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        await scheduler.close()  # cancels the worker waiting with `held`, into `held`
        return ran, cancelled

    ran, cancelled = asyncio.run(scenario())
    assert ran == ["fine", "fine"]
    assert cancelled


def test_a_burst_waiting_unread_ends_a_workers_turn_at_each_check() -> None:
    """Reading first: while `unread` says a burst waits, the reader gets a turn between jobs."""

    async def scenario(unread: int) -> list[int]:
        scheduler = FairScheduler(1, 1, 100, 100, unread=lambda: unread)
        scheduler.BEHIND_TURN = 0.0  # check before every job (no clock in the test)
        scheduler.YIELD_AFTER = 3600.0  # never for time alone
        turns = 0
        seen: list[int] = []

        async def reader() -> None:  # stands for nats-py's read loop: one step a turn
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        def job():  # type: ignore[no-untyped-def]
            async def run() -> None:
                seen.append(turns)

            return run

        reading = asyncio.create_task(reader())
        for _ in range(5):
            assert scheduler.submit("alice", job(), job())
        scheduler.start()
        await scheduler.wait_empty()
        await scheduler.close()
        reading.cancel()
        return seen

    behind = asyncio.run(scenario(10 * FairScheduler.READ_BEHIND))
    caught_up = asyncio.run(scenario(0))
    assert len(set(behind)) == 5  # the reader ran between every two jobs
    assert len(set(caught_up)) == 1  # nothing unread: the jobs ran back to back
