"""Progress reports on a real class stack: stored, read back, private, bounded."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from labkit.auth.client import Login
from labkit.classroom.progress import class_progress, my_progress, report
from labkit.client import connect_as
from labkit.error_replies import RemoteError, raise_for_error
from labkit.nsc.wrapper import Nsc
from labkit.protocol import ProgressReport
from labkit.settings import ProgressSettings
from tests.classroom.conftest import MAX_EXERCISES, ClassStack
from tests.nats_helpers import observed_connection, sentinel_through, wait_until


async def _instructor_view(class_stack: ClassStack) -> dict[str, list[ProgressReport]]:
    """What the dashboard sees: the bucket read with the stack's own credentials."""
    settings = class_stack.stack.settings
    nc = await connect_as(Nsc.from_settings(settings).server_creds(), settings=settings)
    try:
        return await class_progress(nc, settings.progress)
    finally:
        await nc.close()


def _summary(records: list[ProgressReport]) -> dict[str, tuple[bool, int]]:
    return {r.exercise_id: (r.passed, r.attempts) for r in records}


def test_a_report_is_stored_and_read_back(class_stack: ClassStack) -> None:
    alice = class_stack.learner("alice")

    async def scenario() -> tuple[ProgressReport, list[ProgressReport]]:
        nc = await alice.connect()
        try:
            first = await report(nc, "lab01-ex1", False, 1)
            assert (first.exercise_id, first.passed, first.attempts) == ("lab01-ex1", False, 1)
            await report(nc, "lab01-ex2", False, 1)
            stored = await report(nc, "lab01-ex1", True, 2)  # the last report wins
            return stored, await my_progress(nc)
        finally:
            await nc.close()

    stored, mine = asyncio.run(scenario())
    assert stored.at.seconds > 1_000_000_000  # the server's clock
    assert _summary(mine) == {"lab01-ex1": (True, 2), "lab01-ex2": (False, 1)}
    everyone = asyncio.run(_instructor_view(class_stack))
    assert _summary(everyone[alice.user_id]) == {"lab01-ex1": (True, 2), "lab01-ex2": (False, 1)}


def test_the_server_sets_the_time_whatever_the_learner_sent(class_stack: ClassStack) -> None:
    alice = class_stack.learner("alice")

    async def scenario() -> ProgressReport:
        nc = await alice.connect()
        try:
            forged = ProgressReport(
                exercise_id="lab02-ex1", passed=True, attempts=1, at=Timestamp(seconds=42)
            )
            reply = await nc.request(
                f"{alice.user_id}.progress", forged.SerializeToString(), timeout=5
            )
            return ProgressReport.FromString(reply.data)
        finally:
            await nc.close()

    assert asyncio.run(scenario()).at.seconds > 1_000_000_000


@pytest.mark.parametrize(
    ("exercise_id", "attempts", "says"),
    [
        ("", 1, "exercise id"),
        ("lab01.ex1", 1, "exercise id"),  # a dot would reach into another key's space
        ("x" * 65, 1, "exercise id"),
        ("lab01 ex1", 1, "exercise id"),
        ("lab01-ex1", -1, "attempts"),
    ],
)
def test_bad_reports_get_a_clear_error_and_store_nothing(
    class_stack: ClassStack, exercise_id: str, attempts: int, says: str
) -> None:
    alice = class_stack.learner("alice")

    async def scenario() -> tuple[RemoteError, list[ProgressReport]]:
        nc = await alice.connect()
        try:
            with pytest.raises(RemoteError) as refused:
                await report(nc, exercise_id, True, attempts)
            return refused.value, await my_progress(nc)
        finally:
            await nc.close()

    refused, mine = asyncio.run(scenario())
    assert refused.code == "invalid_report"
    assert says in refused.message
    assert mine == []


def _forbidden(alice: Login, bob: Login, bucket: str) -> list[tuple[str, str]]:
    """What alice tries against bob's progress: (publish|subscribe, subject)."""
    key = f"{bob.user_id}.lab01-ex1"
    stream = f"KV_{bucket}"
    return [
        ("publish", f"{bob.user_id}.progress"),
        ("publish", f"{bob.user_id}.progress.mine"),
        ("subscribe", f"{bob.user_id}.progress"),
        ("subscribe", f"{bob.user_id}.>"),
        # The bucket itself, through the KV and JetStream API subjects.
        ("publish", f"$KV.{bucket}.{key}"),
        ("subscribe", f"$KV.{bucket}.>"),
        ("publish", f"$JS.API.DIRECT.GET.{stream}.$KV.{bucket}.{key}"),
        ("publish", f"$JS.API.STREAM.MSG.GET.{stream}"),
        ("publish", f"$JS.API.STREAM.INFO.{stream}"),
        ("publish", f"$JS.API.STREAM.PURGE.{stream}"),
        ("publish", f"$JS.API.STREAM.UPDATE.{stream}"),
        ("publish", f"$JS.API.STREAM.DELETE.{stream}"),
        ("publish", f"$JS.API.CONSUMER.CREATE.{stream}"),
        ("publish", f"$JS.API.CONSUMER.CREATE.{stream}.spy.$KV.{bucket}.>"),
    ]


def test_alice_cannot_read_or_overwrite_bobs_progress(class_stack: ClassStack) -> None:
    alice, bob = class_stack.learner("alice"), class_stack.learner("bob")
    bucket = ProgressSettings().bucket
    attempts = _forbidden(alice, bob, bucket)

    async def scenario() -> tuple[list[str], int, list[ProgressReport], list[ProgressReport]]:
        bob_nc = await bob.connect()
        await report(bob_nc, "lab01-ex1", True, 3)
        # Bob listens on his own progress subject: anything alice got onto it shows here.
        bobs_subject = await bob_nc.subscribe(f"{bob.user_id}.progress")
        await bob_nc.flush()
        alice_nc, seen = await observed_connection(alice.nats.creds, alice.nats.servers[0])
        forged = ProgressReport(exercise_id="lab01-ex1", passed=False, attempts=99)
        for action, subject in attempts:
            if action == "publish":
                await alice_nc.publish(subject, forged.SerializeToString(), reply="_INBOX.x")
            else:
                await alice_nc.subscribe(subject)
        await alice_nc.flush()
        await wait_until(lambda: len(seen.errors) >= len(attempts), "every refusal")
        await sentinel_through(bob_nc, f"{bob.user_id}.sentinel", after=[alice_nc])
        delivered = bobs_subject.pending_msgs
        alices_own = await my_progress(alice_nc)
        bobs_own = await my_progress(bob_nc)
        await alice_nc.close()
        await bob_nc.close()
        return seen.errors, delivered, alices_own, bobs_own

    errors, delivered, alices_own, bobs_own = asyncio.run(scenario())
    joined = " ".join(errors).lower()
    for action, subject in attempts:
        word = "publish" if action == "publish" else "subscription"
        assert f'permissions violation for {word} to "{subject.lower()}"' in joined, subject
    assert delivered == 0
    assert alices_own == []
    assert _summary(bobs_own) == {"lab01-ex1": (True, 3)}
    assert _summary(asyncio.run(_instructor_view(class_stack))[bob.user_id]) == {
        "lab01-ex1": (True, 3)
    }


def test_a_flood_of_exercise_ids_stays_bounded(class_stack: ClassStack) -> None:
    mallory, bob = class_stack.learner("mallory"), class_stack.learner("bob")
    flood = [f"flood-{n}-{uuid.uuid4().hex[:6]}" for n in range(6 * MAX_EXERCISES)]

    async def scenario() -> tuple[list[object], list[ProgressReport], ProgressReport]:
        nc = await mallory.connect()
        try:
            outcomes = await asyncio.gather(
                *(report(nc, exercise, False, 1, timeout=10) for exercise in flood),
                return_exceptions=True,
            )
            mine = await my_progress(nc)
            # A record mallory has may still be reported again, past the bound.
            again = await report(nc, mine[0].exercise_id, True, 2)
        finally:
            await nc.close()
        bob_nc = await bob.connect()
        try:
            await report(bob_nc, "lab01-ex1", True, 1)  # others are not hurt
        finally:
            await bob_nc.close()
        return outcomes, mine, again

    outcomes, mine, again = asyncio.run(scenario())
    stored = [o for o in outcomes if isinstance(o, ProgressReport)]
    refused = [o for o in outcomes if isinstance(o, RemoteError)]
    assert len(stored) + len(refused) == len(flood), [o for o in outcomes if o not in stored]
    assert len(mine) == len(stored) <= MAX_EXERCISES
    assert len(stored) == MAX_EXERCISES  # one server process: exactly the bound
    assert {r.code for r in refused} == {"progress_full"}
    assert "LABKIT_PROGRESS_MAX_EXERCISES_PER_USER" in refused[0].message
    assert (again.passed, again.attempts) == (True, 2)
    everyone = asyncio.run(_instructor_view(class_stack))
    assert len(everyone[mallory.user_id]) == MAX_EXERCISES
    assert _summary(everyone[bob.user_id]) == {"lab01-ex1": (True, 1)}


def test_garbage_gets_an_error_reply_and_the_server_goes_on(class_stack: ClassStack) -> None:
    alice = class_stack.learner("alice")
    rng = random.Random(14)
    payloads = [rng.randbytes(rng.randrange(1, 200)) for _ in range(40)]
    payloads += [b"\xff" * 300, ProgressReport(exercise_id="é" * 10).SerializeToString()]

    async def scenario() -> tuple[list[object], ProgressReport]:
        nc = await alice.connect()
        try:
            answers: list[object] = []
            for data in payloads:
                reply = await nc.request(f"{alice.user_id}.progress", data, timeout=5)
                try:
                    raise_for_error(reply.headers, reply.data)
                    answers.append(ProgressReport.FromString(reply.data))
                except RemoteError as exc:
                    answers.append(exc)
            return answers, await report(nc, "lab05-ex1", True, 1)
        finally:
            await nc.close()

    answers, after = asyncio.run(scenario())
    codes = {a.code for a in answers if isinstance(a, RemoteError)}
    assert codes <= {"invalid_payload", "invalid_report", "progress_full"}, codes
    assert codes  # random bytes are rarely a valid report
    assert after.exercise_id == "lab05-ex1"
