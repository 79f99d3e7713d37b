"""Exercises of notebook 03 (identified echo): handlers of your own, served for real."""

from __future__ import annotations

from labkit.exercises.base import AsyncExercise, NotYet
from labkit.exercises.live import ALICE, BOB, Learner, connect_learner, require_router, serve
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import RemoteError
from labkit.subjects import ECHO_COUNT, ECHO_REVERSE, user_subject

MAX_COUNTED = 20  # characters the counting echo accepts


async def _answer(learner: Learner, lab_subject: str, text: str) -> str:
    """The learner's server's reply to `text`; NotYet when it is an error reply."""
    subject = user_subject(learner.name, lab_subject)
    try:
        reply = await learner.ask(subject, EchoRequest(message=text), EchoResponse)
    except RemoteError as exc:
        raise NotYet(
            f"{learner.name} sent {text!r} to `{subject}` and got an error reply: "
            f"{exc.code}: {exc.message}"
        ) from None
    return reply.message


class ReverseRouter(AsyncExercise):
    number = 1
    title = "A reversing echo"
    answer_name = "reverse_router"
    prompt = (
        "Build `reverse_router`: a `Router` with a handler on every user's "
        f"`{ECHO_REVERSE}` (`<you>.{ECHO_REVERSE}`) that answers an `EchoRequest` with "
        "an `EchoResponse` holding the message reversed: `'hello'` → `'olleh'`. The "
        "shout handler above is a model. The check serves your router from this kernel "
        "on the stack's NATS server and sends it requests as two users."
    )
    placeholder_code = "reverse_router = ____  # a Router, like the shout example above"
    hint_text = (
        f"`Router(...)`, then `@reverse_router.subscribe(any_user({ECHO_REVERSE!r}))` on an "
        "`async def` taking `request: EchoRequest` and returning `EchoResponse(...)`. "
        "A string reversed is `text[::-1]`."
    )
    solution_code = f'''\
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router
from labkit.subjects import any_user

reverse_router = Router("reverse")


@reverse_router.subscribe(any_user("{ECHO_REVERSE}"))
async def reverse(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=request.message[::-1])
'''

    async def verify(self, answer: object) -> str:
        router = require_router(answer, self.answer_name, user_subject(ALICE, ECHO_REVERSE))
        async with serve(router, self.settings):
            for user, text in ((ALICE, "hello"), (BOB, "NATS server"), (ALICE, "")):
                async with connect_learner(self.settings, user) as learner:
                    reply = await _answer(learner, ECHO_REVERSE, text)
                if reply != text[::-1]:
                    raise NotYet(
                        f"{user} sent {text!r} to `{user}.{ECHO_REVERSE}` and your server "
                        f"answered {reply!r}; expected {text[::-1]!r}"
                    )
        return (
            f"your server answered `<user>.{ECHO_REVERSE}` on NATS with each message "
            "reversed, for two users"
        )


class CountRouter(AsyncExercise):
    number = 2
    title = "Count, name, refuse"
    answer_name = "count_router"
    prompt = (
        f"Build `count_router`: on every user's `{ECHO_COUNT}` answer "
        "`'<n> characters from <user>'`, where `<n>` is the length of the message and "
        "`<user>` the sender (`CurrentUser`). A message longer than "
        f"{MAX_COUNTED} characters gets an error reply instead: raise "
        "`HandlerError(..., code='too_long')`."
    )
    placeholder_code = "count_router = ____  # a Router; CurrentUser and HandlerError help"
    hint_text = (
        "Ask for `user: CurrentUser` next to the request. "
        f"`if len(request.message) > {MAX_COUNTED}: raise HandlerError('...', code='too_long')`"
        "; the requester then gets a `RemoteError` with that code."
    )
    solution_code = f'''\
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import CurrentUser, HandlerError, Router
from labkit.subjects import any_user

count_router = Router("count")


@count_router.subscribe(any_user("{ECHO_COUNT}"))
async def count(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    if len(request.message) > {MAX_COUNTED}:
        raise HandlerError("at most {MAX_COUNTED} characters, please", code="too_long")
    return EchoResponse(message=f"{{len(request.message)}} characters from {{user}}")
'''

    async def verify(self, answer: object) -> str:
        router = require_router(answer, self.answer_name, user_subject(ALICE, ECHO_COUNT))
        longest, too_long = "x" * MAX_COUNTED, "y" * (MAX_COUNTED + 1)
        async with serve(router, self.settings):
            for user, text in ((ALICE, "hello"), (BOB, "hi"), (ALICE, longest)):
                async with connect_learner(self.settings, user) as learner:
                    reply = await _answer(learner, ECHO_COUNT, text)
                expected = f"{len(text)} characters from {user}"
                if reply != expected:
                    raise NotYet(
                        f"{user} sent {text!r} to `{user}.{ECHO_COUNT}` and your server "
                        f"answered {reply!r}; expected {expected!r}"
                    )
            async with connect_learner(self.settings, ALICE) as learner:
                subject = user_subject(ALICE, ECHO_COUNT)
                try:
                    reply = await _answer_or_refusal(learner, subject, too_long)
                except RemoteError as exc:
                    if exc.code != "too_long":
                        raise NotYet(
                            f"a {len(too_long)}-character message was refused with code "
                            f"{exc.code!r} ({exc.message}); use code='too_long'"
                        ) from None
                else:
                    raise NotYet(
                        f"a {len(too_long)}-character message got the answer {reply!r}; "
                        "refuse it with `HandlerError(..., code='too_long')`"
                    )
        return (
            f"your server counted, named the sender from the subject, and refused a "
            f"{MAX_COUNTED + 1}-character message with `too_long`"
        )


async def _answer_or_refusal(learner: Learner, subject: str, text: str) -> str:
    reply = await learner.ask(subject, EchoRequest(message=text), EchoResponse)
    return reply.message


ex1 = ReverseRouter()
ex2 = CountRouter()
EXERCISES = (ex1, ex2)
