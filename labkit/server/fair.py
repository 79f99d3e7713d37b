"""Fair scheduling of the application server's work: per user, round-robin.

One NATS subscription per route hands the server every user's requests in arrival
order, on one task. Served in that order, one learner's burst of thousands puts
everyone else behind it (head-of-line blocking). So the receive path only sorts:
`submit` puts a job in its user's queue (the user is the subject's first token)
and returns at once, and a fixed set of workers (the global in-flight bound) take
users in turn, one job per turn:

- each user's queue holds at most `user_max_queued` jobs waiting for a handler
  slot (plus those that may start at once); past that the request is
  answered `busy` (the requester retries later). That answer is sent in the user's
  own turns too (a few per turn, one turn at a time): sending thousands of them at
  once, in the receive path, would hold everyone else behind one user's burst all
  the same (it is reading the burst that must go fast: the others' requests are
  behind it on the connection). Only the
  answer's subjects are kept for it, never the payload (a few hundred bytes); past
  `max_deferred` waiting answers in all, `submit` says no and the caller answers
  at once;
- each user has at most `user_max_in_flight` jobs running; a user at the bound
  waits out of the rotation, so others keep the remaining workers;
- a worker yields to the event loop once it has run jobs back to back for
  YIELD_AFTER seconds, so a run of handlers that never wait cannot keep the receive
  path from reading the next message for longer; not after every job or every few:
  each yield is a turn of the whole loop, and the replies written so far leave in
  one write per turn (a yield every 8 echoes made that 8 replies per system call,
  and the server's CPU per request 1.8x a bare responder's);
- reading comes first: while more than READ_BEHIND bytes wait unread on the
  connection (`unread`: a burst is coming in), a worker's turn ends after
  BEHIND_TURN seconds instead. Whoever sends during one learner's burst waits on
  the connection behind it until the server has read it; reading is cheap (a few
  µs a message), the `busy` answers to the burst are not (about 20 µs each), so
  they wait for the reading, and the burst is read at nearly the speed it is sent;
- one worker goes through the rotation while its jobs finish without waiting (most
  handlers: an echo, a cache hit): waking a second worker for every job would cost
  a turn of the event loop per message. A worker starts a job by hand (send(None))
  and, only when the job waits (I/O), wakes an idle worker to go on with the
  rotation while it waits with its job.

Everything here runs on one event loop: no locks, only plain counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

Job = Callable[[], Coroutine[Any, Any, None]]

log = logging.getLogger("labkit.server")


@dataclass
class UserLoad:
    """One user's work: the jobs waiting and how many are running."""

    queued: deque[Job] = field(default_factory=deque)
    refusals: deque[Job] = field(default_factory=deque)  # `busy` answers still to send
    refusing: bool = False  # a worker is sending some: one at a time per user
    running: int = 0
    in_rotation: bool = False


class FairScheduler:
    """Run jobs per user, round-robin, with per-user and global bounds."""

    # `busy` answers one turn sends: cheap each, and a turn must stay short.
    REFUSALS_PER_TURN = 8
    # How long a worker runs jobs back to back (when they do not wait) before it
    # yields: what reading the next message may wait for, at most, per worker.
    YIELD_AFTER = 0.001
    # While reading is behind: the shorter turn, and the unread bytes that mean so
    # (more than one read of nats-py's; 200 echoes in flight are about 20 KB).
    BEHIND_TURN = 0.0002
    READ_BEHIND = 64 * 1024

    def __init__(
        self,
        workers: int,
        user_max_in_flight: int,
        user_max_queued: int,
        max_deferred: int,
        unread: Callable[[], int] | None = None,
    ) -> None:
        if min(workers, user_max_in_flight, user_max_queued, max_deferred) < 1:
            raise ValueError("every bound of the fair scheduler must be at least 1")
        self.workers = workers
        self.user_max_in_flight = user_max_in_flight
        self.user_max_queued = user_max_queued
        self.max_deferred = max_deferred
        # Bytes waiting unread on the connection the jobs come from (None: unknown).
        self.unread = unread
        self._users: dict[str, UserLoad] = {}
        # Users with a queued job and room to run it, each at most once, in turn order.
        self._rotation: deque[str] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        # Workers going through the rotation now (not idle, not waiting with a job).
        self._active = 0
        self._queued = 0
        self._deferred = 0
        self._emptied: asyncio.Event | None = None
        # Per user: jobs turned away (busy) since the start, for $SRV.STATS.
        self.rejected: dict[str, int] = {}

    def start(self) -> None:
        """Start the workers (on the running event loop)."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    def submit(self, user: str, job: Job, refuse: Job | None = None) -> bool:
        """Queue `job` for `user`, or past the user's bound `refuse` (the `busy` answer).

        False when neither was queued: the user's queue is full and so is the space
        for `busy` answers (or there is no `refuse`); the caller answers `busy` itself.
        Without `refuse` the job is queued past the bound: for work whose source
        already bounds it (a JetStream consumer's batch), which must not be turned away.
        """
        load = self._users.get(user)
        if load is None:
            load = self._users[user] = UserLoad()
        # Jobs that may start at once (a free handler slot of the user's) do not count
        # against the queue bound: the reading may run ahead of the workers taking them.
        room = self.user_max_queued + max(0, self.user_max_in_flight - load.running)
        if refuse is not None and len(load.queued) >= room:
            self.rejected[user] = self.rejected.get(user, 0) + 1
            if self._deferred >= self.max_deferred:
                return False
            load.refusals.append(refuse)
            self._deferred += 1
        else:
            load.queued.append(job)
            self._queued += 1
        if not load.in_rotation and self._eligible(load):
            # A worker already going through the rotation will come to it.
            self._enter_rotation(user, load, wake=not self._active)
        return True

    def depths(self) -> dict[str, int]:
        """Jobs waiting per user, for users with any."""
        return {user: len(load.queued) for user, load in self._users.items() if load.queued}

    @property
    def busy(self) -> int:
        """Jobs queued or running, and `busy` answers not yet sent."""
        return self._queued + self._running + self._deferred

    async def wait_empty(self) -> None:
        """Return once no job is queued or running."""
        while self.busy:
            self._emptied = asyncio.Event()
            await self._emptied.wait()

    async def close(self) -> None:
        """Stop the workers (call after `wait_empty`; jobs still queued are dropped)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _behind(self) -> bool:
        """Is a burst waiting to be read (so the current turn should end)?"""
        return self.unread is not None and self.unread() > self.READ_BEHIND

    def _eligible(self, load: UserLoad) -> bool:
        """Has work it may start now? `busy` answers never wait for a handler slot."""
        return (bool(load.refusals) and not load.refusing) or (
            bool(load.queued) and load.running < self.user_max_in_flight
        )

    def _enter_rotation(self, user: str, load: UserLoad, wake: bool = True) -> None:
        load.in_rotation = True
        self._rotation.append(user)
        if wake:
            self._wake_one()

    def _wake_one(self) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        # A turn ends at `turn_ends`, or at a check (every BEHIND_TURN) that finds
        # reading behind; never before its first job, so every turn gets somewhere.
        turn_ends = check_at = 0.0
        first_of_turn = True
        self._active += 1
        while True:
            if not self._rotation:
                waiter = loop.create_future()
                self._idle.append(waiter)
                self._active -= 1
                try:
                    await waiter
                finally:
                    self._active += 1
                first_of_turn = True
                continue
            now = clock()
            if first_of_turn:
                turn_ends, check_at = now + self.YIELD_AFTER, now + self.BEHIND_TURN
                first_of_turn = False
            elif now >= check_at:
                if now >= turn_ends or self._behind():
                    # Let the receive path (and everyone else) run before the next job.
                    await asyncio.sleep(0)
                    first_of_turn = True
                    continue
                check_at = min(now + self.BEHIND_TURN, turn_ends)
            user = self._rotation.popleft()
            load = self._users[user]
            refusing = bool(load.refusals) and not load.refusing
            if refusing:
                load.refusing = True
                turn = min(self.REFUSALS_PER_TURN, len(load.refusals))
                refusals = [load.refusals.popleft() for _ in range(turn)]
                job: Job | list[Job] = refusals
                self._deferred -= len(refusals)
            elif load.queued and load.running < self.user_max_in_flight:
                job = load.queued.popleft()
                self._queued -= 1
            else:  # nothing it may start now (not expected: entries are checked)
                load.in_rotation = False
                continue
            load.running += 1
            self._running += 1
            load.in_rotation = False
            # Back of the line for the user's next job: everyone else goes first. No
            # worker is woken for it: this one comes back to it unless its job waits.
            if self._eligible(load):
                self._enter_rotation(user, load, wake=False)
            try:
                if isinstance(job, list):
                    for refusal in job:
                        await self._run(refusal)
                else:
                    await self._run(job)
            finally:
                load.running -= 1
                self._running -= 1
                if refusing:
                    load.refusing = False
                if not load.in_rotation and self._eligible(load):
                    # No one to wake: this worker looks at the rotation next.
                    self._enter_rotation(user, load, wake=False)
                elif not (load.queued or load.refusals or load.running):
                    del self._users[user]  # memory stays flat however many users came
                if self._emptied is not None and not self.busy:
                    self._emptied.set()

    async def _run(self, job: Job) -> None:
        """Run `job`; if it waits, wake another worker for the rotation meanwhile."""
        try:
            coroutine = job()
            try:
                step = coroutine.send(None)
            except StopIteration:
                return  # done without waiting: the common case, no turn of the loop
            self._active -= 1
            try:
                if self._rotation and not self._active:
                    self._wake_one()
                await _Rest(coroutine, step)
            finally:
                self._active += 1
        except Exception:  # a job reports its own failures; a worker must survive them
            log.exception("a scheduled job failed")


class _Rest:
    """The rest of a coroutine already started with send(None), to await.

    What `await coroutine` does after its first step (`yield from`): every value it
    yields (the future it waits on) goes to the task, and what the task sends or
    throws (a result, a cancellation) goes back into it.
    """

    __slots__ = ("_coroutine", "_step")

    def __init__(self, coroutine: Coroutine[Any, Any, None], step: Any) -> None:
        self._coroutine = coroutine
        self._step = step

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, step = self._coroutine, self._step
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # a cancellation, into the job where it waits
                try:
                    step = coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    step = coroutine.send(sent)
                except StopIteration:
                    return
