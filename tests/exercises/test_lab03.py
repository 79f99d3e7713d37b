"""Notebook 03's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import pytest

from labkit.exercises.lab03 import CountRouter, ReverseRouter
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import CurrentUser, HandlerError, Router
from labkit.settings import Settings
from labkit.subjects import any_user
from tests.exercises.checking import assert_not_yet, run_check

unreversed = Router("unreversed")


@unreversed.subscribe(any_user("echo.reverse"))
async def echo_back(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=request.message)


wrong_subject = Router("wrong subject")


@wrong_subject.subscribe(any_user("reverse"))
async def reverse_elsewhere(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=request.message[::-1])


crashing = Router("crashing")


@crashing.subscribe(any_user("echo.reverse"))
async def reverse_in_place(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=request.message.reverse())  # type: ignore[attr-defined]


async def reverse(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=request.message[::-1])


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (unreversed, "sent 'hello' to `exercise-alice.echo.reverse` and your server answered "),
        (wrong_subject, "none of reverse_router's patterns ['*.reverse'] matches"),
        (crashing, "got an error reply: internal_error: the handler failed: AttributeError"),
        (Router("empty"), "reverse_router has no routes"),
        (reverse, "reverse_router is a function; make it a `Router(...)`"),
    ],
    ids=["not reversed", "wrong subject", "crashes", "no routes", "a bare handler"],
)
def test_reverse_router_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(ReverseRouter(stack_settings), answer), says)


counts_everything = Router("counts everything")


@counts_everything.subscribe(any_user("echo.count"))
async def count_all(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    return EchoResponse(message=f"{len(request.message)} characters from {user}")


off_by_one = Router("off by one")


@off_by_one.subscribe(any_user("echo.count"))
async def count_strictly(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    if len(request.message) >= 20:
        raise HandlerError("too long", code="too_long")
    return EchoResponse(message=f"{len(request.message)} characters from {user}")


other_code = Router("other code")


@other_code.subscribe(any_user("echo.count"))
async def count_or_refuse(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    if len(request.message) > 20:
        raise HandlerError("too long")
    return EchoResponse(message=f"{len(request.message)} characters from {user}")


anonymous = Router("anonymous")


@anonymous.subscribe(any_user("echo.count"))
async def count_anonymously(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=f"{len(request.message)} characters from alice")


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (counts_everything, "a 21-character message got the answer '21 characters from"),
        (off_by_one, "got an error reply: too_long"),
        (other_code, "refused with code 'bad_request' (too long); use code='too_long'"),
        (anonymous, "expected '5 characters from exercise-alice'"),
    ],
    ids=["no limit", "off by one", "other code", "names nobody"],
)
def test_count_router_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(CountRouter(stack_settings), answer), says)
