"""Notebook 08's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from labkit.exercises.lab08 import Majority, ScaledEcho
from labkit.settings import Settings
from tests.exercises.checking import assert_correct, assert_not_yet, run_check


async def every_replica_answers(nc: Client, replica: str) -> Subscription:
    async def answer(msg: Msg) -> None:
        await msg.respond(f"echo {msg.data.decode()} from {replica}".encode())

    return await nc.subscribe("*.echo.scaled", cb=answer)  # no queue group


async def forgets_the_replica(nc: Client, replica: str) -> Subscription:
    async def answer(msg: Msg) -> None:
        await msg.respond(f"echo {msg.data.decode()}".encode())

    return await nc.subscribe("*.echo.scaled", queue="echo", cb=answer)


async def returns_nothing(nc: Client, replica: str) -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(f"echo {msg.data.decode()} from {replica}".encode())

    await nc.subscribe("*.echo.scaled", queue="echo", cb=answer)


async def never_answers(nc: Client, replica: str) -> Subscription:
    async def answer(msg: Msg) -> None:
        return None

    return await nc.subscribe("*.echo.scaled", queue="echo", cb=answer)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (every_replica_answers, "a request reached more than one replica"),
        (forgets_the_replica, "got the reply 'echo request 0'; expected `echo request 0 from"),
        (returns_nothing, "serve_echo returned None; return the subscription"),
        (never_answers, "got no reply within 2 s: does the callback `respond`?"),
    ],
    ids=["no queue group", "no replica name", "returns nothing", "never answers"],
)
def test_scaled_echo_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(ScaledEcho(stack_settings), answer), says)


def test_scaled_echo_solution_names_both_replicas(stack_settings: Settings) -> None:
    exercise = ScaledEcho(stack_settings)
    result = run_check(exercise, exercise.solved())
    assert_correct(result)
    assert "each of the 40 requests reached exactly one replica" in result.message


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda replicas: replicas - 1, "nodes_that_may_fail(2) returned 1; with 2 copies"),
        (lambda replicas: replicas // 2, "nodes_that_may_fail(2) returned 1"),
        (lambda replicas: replicas // 2 + 1, "nodes_that_may_fail(1) returned 1"),
        (lambda replicas: str(replicas // 2), "returned a str; return an int"),
    ],
    ids=["all but one", "half", "the majority", "a str"],
)
def test_majority_wrong(answer: object, says: str) -> None:
    assert_not_yet(Majority().check(answer), says)
