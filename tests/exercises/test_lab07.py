"""Notebook 07's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import pytest

from labkit.buffer import Buffer, FlushResult
from labkit.exercises.lab07 import AfterTheCrash, SendOffline
from labkit.protocol import EchoRequest
from labkit.settings import Settings
from tests.exercises.checking import assert_correct, assert_not_yet, run_check


def request(text: str) -> bytes:
    return EchoRequest(message=text).SerializeToString()


def bare_text(buffer: Buffer, texts: list[str]) -> list[int]:
    return [buffer.save(text) for text in texts]


def newest_first(buffer: Buffer, texts: list[str]) -> list[int]:
    return [buffer.save(request(text)) for text in reversed(texts)]


def other_subject(buffer: Buffer, texts: list[str]) -> list[int]:
    return [buffer.save(request(text), "exercise-stream.echo") for text in texts]


def twice(buffer: Buffer, texts: list[str]) -> list[int]:
    return [buffer.save(request(text)) for text in texts + texts]


def only_the_last(buffer: Buffer, texts: list[str]) -> list[int]:
    return [buffer.save(request(texts[-1]))]


def nothing_saved(buffer: Buffer, texts: list[str]) -> list[int]:
    return []


def no_ids(buffer: Buffer, texts: list[str]) -> None:
    buffer.save_many(request(text) for text in texts)


def counted(buffer: Buffer, texts: list[str]) -> int:
    return len(buffer.save_many(request(text) for text in texts))


async def awaited(buffer: Buffer, texts: list[str]) -> list[int]:
    return buffer.save_many(request(text) for text in texts)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (bare_text, "the outbox holds the bare text b'offline 1 ("),
        (newest_first, "the requests were saved in the order ['offline 3 ("),
        (other_subject, "a request was saved for `exercise-stream.echo`; leave the subject out"),
        (twice, "the outbox holds 6 messages after send_offline(buffer, <3 texts>)"),
        (only_the_last, "the outbox holds 1 message after"),
        (nothing_saved, "the outbox is still empty"),
        (no_ids, "the requests are saved, but send_offline returned None; return the ids"),
        (counted, "send_offline returned an int; return the ids `buffer.save(...)` gave"),
        (awaited, "send_offline(buffer, texts) is `async def`; this one should be a plain `def`"),
    ],
    ids=[
        "bare text",
        "newest first",
        "other subject",
        "twice",
        "only the last",
        "nothing",
        "no ids",
        "a count",
        "async",
    ],
)
def test_send_offline_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(SendOffline(stack_settings), answer), says)


def test_send_offline_may_save_all_at_once(stack_settings: Settings) -> None:
    def in_one_transaction(buffer: Buffer, texts: list[str]) -> list[int]:
        return buffer.save_many(request(text) for text in texts)

    result = run_check(SendOffline(stack_settings), in_one_transaction, with_lab_server=True)
    assert_correct(result)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            FlushResult(sent=2, duplicates=0, remaining=0),
            "sent=2 counts only the requests JetStream had not stored yet; but the killed "
            "process deleted nothing",
        ),
        (
            FlushResult(sent=5, duplicates=0, remaining=0),
            "duplicates=0 is not right: which of the requests published again",
        ),
        (
            FlushResult(sent=2, duplicates=0, remaining=3),
            "remaining=3 is not what the flush after the restart reports",
        ),
        (
            FlushResult(sent=4, duplicates=3, remaining=0),
            "sent=4 is not what the restarted flush reports: think about",
        ),
        (
            FlushResult(sent=5, duplicates=3, remaining=0, error=TimeoutError()),
            "your prediction has error=TimeoutError(); the flush after the restart ran",
        ),
        ((5, 3, 0), "after_restart is a tuple; make it a `FlushResult("),
    ],
    ids=[
        "only the unsent",
        "no duplicates",
        "the acked stay",
        "another count",
        "an error",
        "a tuple",
    ],
)
def test_after_the_crash_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    result = run_check(AfterTheCrash(stack_settings), answer, with_lab_server=True)
    assert_not_yet(result, says)
    # A direction, not the answer: the message never gives away the numbers to write.
    assert "sent=5" not in result.message and "duplicates=3" not in result.message
