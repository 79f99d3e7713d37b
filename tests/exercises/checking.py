"""Run an exercise's check from a test, whether the exercise is sync or async."""

from __future__ import annotations

import asyncio

from labkit.exercises.base import (
    NOT_ANSWERED,
    AsyncExercise,
    CheckResult,
    Exercise,
    SyncExercise,
)
from labkit.labs import lab_server


def run_check(exercise: Exercise, answer: object, *, with_lab_server: bool = False) -> CheckResult:
    """`exercise.check(answer)`, awaited when it is async, optionally with the labs served."""

    async def scenario() -> CheckResult:
        server = lab_server(exercise.settings) if with_lab_server else None
        if server is not None:
            await server.start()
        try:
            if isinstance(exercise, AsyncExercise):
                return await exercise.check(answer)
            assert isinstance(exercise, SyncExercise)
            return exercise.check(answer)
        finally:
            if server is not None:
                await server.stop()

    return asyncio.run(scenario())


def assert_correct(result: CheckResult) -> None:
    assert result.correct, result.message


def assert_not_yet(result: CheckResult, *fragments: str) -> None:
    """Not correct, and the message says each of `fragments` (a learner can act on it)."""
    assert not result.correct, result.message
    for fragment in fragments:
        assert fragment in result.message, (fragment, result.message)


def assert_not_answered(result: CheckResult) -> None:
    assert_not_yet(result, NOT_ANSWERED)
