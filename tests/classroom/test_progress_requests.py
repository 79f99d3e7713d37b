"""What a progress report costs in JetStream requests, counted on the real server.

A spy of the labs' account (any subject) subscribes to the JetStream API and to the
progress bucket's subjects: every request the application server makes for a report
passes there (stream info, purge, message get on `$JS.API.…`; puts on `$KV.…`, the
refused conditional ones too). The application server sends them all before its
reply, on one connection, so once the learner has the reply a flush of the spy's
connection has brought them all in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.subscription import Subscription

from labkit.classroom.progress import my_progress, report
from labkit.client import connect_as
from labkit.error_replies import RemoteError
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.protocol import ProgressReport
from labkit.settings import ProgressSettings
from tests.classroom.conftest import MAX_EXERCISES, ClassStack

BUCKET = ProgressSettings().bucket


async def spy_connection(class_stack: ClassStack) -> Client:
    """A user of the labs' account that may use any subject (the test's eyes and hands)."""
    settings = class_stack.stack.settings
    name = f"progress-spy-{uuid.uuid4().hex[:8]}"
    permissions = permissions_from_templates(name, [">"], [">"])
    creds = Nsc.from_settings(settings).create_user(name, permissions=permissions).creds
    return await connect_as(creds, settings=settings)


class RequestCounter:
    """JetStream requests the server makes about one learner's progress records."""

    def __init__(self, spy: Client, user: str) -> None:
        self.spy, self.user = spy, user
        self.subs: list[Subscription] = []

    async def start(self) -> None:
        self.subs = [
            await self.spy.subscribe(f"$JS.API.*.*.KV_{BUCKET}"),  # stream info, purge, get
            await self.spy.subscribe(f"$KV.{BUCKET}.{self.user}.>"),  # puts
        ]
        await self.spy.flush()

    async def seen(self) -> list[str]:
        """What arrived since the last call: one verb per request (`put` for a put)."""
        await self.spy.flush()
        verbs = []
        for sub in self.subs:
            for _ in range(sub.pending_msgs):
                msg = await sub.next_msg()
                if msg.subject.startswith("$KV."):
                    verbs.append("put")
                elif self.user.encode() in msg.data:  # the request names the user's keys
                    verbs.append(msg.subject.split(".")[3].lower())  # STREAM.INFO -> info
        return sorted(verbs)

    async def cost(self, action: Callable[[], Awaitable[object]]) -> tuple[object, list[str]]:
        """`action`'s outcome (or RemoteError) and the requests it made."""
        await self.seen()
        try:
            outcome = await action()
        except RemoteError as exc:
            outcome = exc
        return outcome, await self.seen()


def _report(
    nc: Client, exercise: str, passed: bool = False, attempts: int = 1
) -> Callable[[], Awaitable[ProgressReport]]:
    return lambda: report(nc, exercise, passed, attempts)


def test_a_re_report_is_one_put_and_a_new_exercise_two_requests(class_stack: ClassStack) -> None:
    alice = class_stack.learner("alice")

    async def scenario() -> list[tuple[object, list[str]]]:
        spy, nc = await spy_connection(class_stack), await alice.connect()
        counter = RequestCounter(spy, alice.user_id)
        await counter.start()
        try:
            costs = [
                await counter.cost(_report(nc, "lab01-ex1")),  # new
                await counter.cost(_report(nc, "lab01-ex1", True, 2)),  # known
                await counter.cost(_report(nc, "lab01-ex1", True, 3)),  # known
            ]
            for n in range(2, MAX_EXERCISES + 1):  # new ones up to the bound
                costs.append(await counter.cost(_report(nc, f"lab01-ex{n}")))
            costs.append(await counter.cost(_report(nc, "lab09-ex1")))  # past the bound
            costs.append(await counter.cost(_report(nc, "lab01-ex2", True, 4)))  # known
            return costs
        finally:
            await nc.close()
            await spy.close()

    costs = asyncio.run(scenario())
    outcomes = [outcome for outcome, _ in costs]
    requests = [verbs for _, verbs in costs]
    assert all(isinstance(o, ProgressReport) for o in outcomes[:-2] + outcomes[-1:]), outcomes
    refused = outcomes[-2]
    assert isinstance(refused, RemoteError) and refused.code == "progress_full"
    new, known = ["info", "put"], ["put"]
    assert requests[:3] == [new, known, known]
    assert requests[3 : 3 + MAX_EXERCISES - 1] == [new] * (MAX_EXERCISES - 1)
    assert requests[-2] == ["info"]  # refused at the bound: the bucket confirms, no put
    assert requests[-1] == known


def test_a_record_removed_by_someone_else_is_not_rewritten_past_the_bound(
    class_stack: ClassStack,
) -> None:
    """The server remembers alice's records; behind its back one is purged (as a
    take-back by another replica would) and another record of hers is added. Her
    re-report of the purged one must not bring her to the bound plus one."""
    alice = class_stack.learner("alice")
    user = alice.user_id

    async def scenario() -> tuple[object, list[str], object, list[str], list[ProgressReport]]:
        spy, nc = await spy_connection(class_stack), await alice.connect()
        counter = RequestCounter(spy, user)
        try:
            for n in range(1, MAX_EXERCISES + 1):
                await report(nc, f"lab02-ex{n}", False, 1)
            js = spy.jetstream()
            await js.purge_stream(f"KV_{BUCKET}", subject=f"$KV.{BUCKET}.{user}.lab02-ex1")
            kv = await js.key_value(BUCKET)
            added = ProgressReport(exercise_id="other-ex", passed=True, attempts=1)
            await kv.put(f"{user}.other-ex", added.SerializeToString())
            await counter.start()
            purged, purged_cost = await counter.cost(_report(nc, "lab02-ex1", True, 2))
            kept, kept_cost = await counter.cost(_report(nc, "lab02-ex2", True, 2))
            return purged, purged_cost, kept, kept_cost, await my_progress(nc)
        finally:
            await nc.close()
            await spy.close()

    purged, purged_cost, kept, kept_cost, mine = asyncio.run(scenario())
    assert isinstance(purged, RemoteError) and purged.code == "progress_full", purged
    # Its remembered revision is gone: the conditional put fails, the create is
    # counted, found past the bound and taken back.
    assert purged_cost == ["info", "purge", "put", "put"]
    assert isinstance(kept, ProgressReport) and kept_cost == ["put"]
    ids = sorted(r.exercise_id for r in mine)
    assert len(mine) == MAX_EXERCISES
    assert ids == [f"lab02-ex{n}" for n in range(2, MAX_EXERCISES + 1)] + ["other-ex"]


def test_a_record_rewritten_or_deleted_elsewhere_is_reported_again(
    class_stack: ClassStack,
) -> None:
    """Another writer changed a record the server remembers (another replica storing
    a report, an operator deleting the key): the re-report is stored at the record's
    current revision, in two puts, and the next one is one put again."""
    alice = class_stack.learner("alice")
    user = alice.user_id

    async def scenario() -> tuple[list[tuple[object, list[str]]], list[ProgressReport]]:
        spy, nc = await spy_connection(class_stack), await alice.connect()
        counter = RequestCounter(spy, user)
        try:
            await report(nc, "lab03-ex1", False, 1)
            await report(nc, "lab03-ex2", False, 1)
            kv = await spy.jetstream().key_value(BUCKET)
            elsewhere = ProgressReport(exercise_id="lab03-ex1", passed=False, attempts=5)
            await kv.put(f"{user}.lab03-ex1", elsewhere.SerializeToString())
            await kv.delete(f"{user}.lab03-ex2")
            await counter.start()
            costs = [
                await counter.cost(_report(nc, "lab03-ex1", True, 6)),
                await counter.cost(_report(nc, "lab03-ex1", True, 7)),
                await counter.cost(_report(nc, "lab03-ex2", True, 2)),
            ]
            return costs, await my_progress(nc)
        finally:
            await nc.close()
            await spy.close()

    costs, mine = asyncio.run(scenario())
    assert all(isinstance(outcome, ProgressReport) for outcome, _ in costs), costs
    assert [verbs for _, verbs in costs] == [["put", "put"], ["put"], ["put", "put"]]
    assert {r.exercise_id: (r.passed, r.attempts) for r in mine} == {
        "lab03-ex1": (True, 7),
        "lab03-ex2": (True, 2),
    }


def test_a_flood_past_the_bound_costs_one_request_each(class_stack: ClassStack) -> None:
    mallory = class_stack.learner("mallory")

    async def scenario() -> list[tuple[object, list[str]]]:
        spy, nc = await spy_connection(class_stack), await mallory.connect()
        counter = RequestCounter(spy, mallory.user_id)
        await counter.start()
        try:
            for n in range(MAX_EXERCISES):
                await report(nc, f"fill-{n}", False, 1)
            return [await counter.cost(_report(nc, f"flood-{n}")) for n in range(10)]
        finally:
            await nc.close()
            await spy.close()

    costs = asyncio.run(scenario())
    assert all(isinstance(o, RemoteError) and o.code == "progress_full" for o, _ in costs)
    assert [verbs for _, verbs in costs] == [["info"]] * 10
