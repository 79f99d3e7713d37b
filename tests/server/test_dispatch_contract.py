"""The contracts of `dispatch` and of dependency injection, called directly (pure logic).

`dispatch(route, subject, data, reply, headers, send, resources)` serves one
message and returns its Outcome; handlers get what their type hints ask for.
These pin down what the docstrings promise, whatever the code inside looks like.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from labkit.protocol import EchoRequest, EchoResponse, ErrorReply
from labkit.server import HandlerError, Reply, Router
from labkit.server import injection as injection_module
from labkit.server.dispatch import (
    ERROR_CODE_HEADER,
    ERROR_HEADER,
    LABKIT_CODE_HEADER,
    Outcome,
    dispatch,
    error_from,
)
from labkit.server.errors import InvalidHandler
from labkit.server.injection import Delivery, Headers, register_dependency
from labkit.server.router import Route

Sent = list[tuple[str, bytes, Headers | None]]


def route_of(pattern: str, handler: Callable[..., Awaitable[Any]]) -> Route:
    router = Router("contract")
    router.subscribe(pattern)(handler)
    return router.routes[0]


def serve(
    route: Route,
    data: bytes = b"",
    *,
    subject: str = "alice.contract",
    reply: str | None = "_INBOX.alice.1",
    headers: Headers | None = None,
    resources: dict[type, Any] | None = None,
    failing_send: bool = False,
) -> tuple[Outcome, Sent, float]:
    """Dispatch one message; its Outcome, what was sent, and how long the call took."""
    sent: Sent = []

    async def send(to: str, body: bytes, with_headers: Headers | None) -> None:
        if failing_send:
            raise ConnectionError("the requester is gone")
        sent.append((to, body, with_headers))

    async def call() -> Outcome:
        return await dispatch(route, subject, data, reply, headers, send, resources or {})

    began = time.perf_counter()
    outcome = asyncio.run(call())
    return outcome, sent, time.perf_counter() - began


ECHO = EchoRequest(message="hi").SerializeToString()


# --- Outcome ---------------------------------------------------------------------------


async def echo(request: EchoRequest) -> EchoResponse:
    return EchoResponse(message=f"echo {request.message}")


async def refuse(request: EchoRequest) -> EchoResponse:
    raise HandlerError(f"no {request.message}", code="not_found", status=404)


async def crash(request: EchoRequest) -> EchoResponse:
    raise RuntimeError("kaboom")


@pytest.mark.parametrize(
    ("handler", "ok", "error"),
    [
        (echo, True, None),
        (refuse, False, "no hi"),
        (crash, False, "the handler failed: RuntimeError: kaboom"),
    ],
)
def test_the_outcome_names_the_route_and_times_the_call(
    handler: Callable[..., Awaitable[Any]], ok: bool, error: str | None
) -> None:
    route = route_of("*.contract", handler)
    outcome, _, took = serve(route, ECHO)
    assert (outcome.route, outcome.ok, outcome.error) == (route.name, ok, error)
    assert 0 <= outcome.seconds <= took  # measured inside the call, never negative


# --- replies -----------------------------------------------------------------------------


def test_a_handler_error_is_logged_with_route_subject_message_and_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = route_of("*.contract", refuse)
    with caplog.at_level(logging.INFO, logger="labkit.server"):
        serve(route, ECHO)
    [line] = [r.getMessage() for r in caplog.records if r.name == "labkit.server"]
    assert route.name in line and "alice.contract" in line
    assert "no hi" in line and "not_found" in line


def test_a_crash_is_logged_with_route_and_subject(caplog: pytest.LogCaptureFixture) -> None:
    route = route_of("*.contract", crash)
    with caplog.at_level(logging.INFO, logger="labkit.server"):
        serve(route, ECHO)
    [record] = [r for r in caplog.records if r.name == "labkit.server"]
    assert route.name in record.getMessage() and "alice.contract" in record.getMessage()
    assert record.exc_info is not None  # the traceback is kept for the teacher


def test_an_error_reply_that_cannot_be_sent_is_logged_and_dispatch_still_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = route_of("*.contract", refuse)
    with caplog.at_level(logging.WARNING, logger="labkit.server"):
        outcome, sent, _ = serve(route, ECHO, failing_send=True)
    assert not outcome.ok and sent == []
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "alice.contract" in warning and "_INBOX.alice.1" in warning


def test_returning_something_else_than_a_message_says_what_to_return() -> None:
    async def text(request: EchoRequest) -> Any:
        return "plain text"

    outcome, sent, _ = serve(route_of("*.contract", text), ECHO)
    assert outcome.error is not None
    assert "returned str; return a protobuf message (it becomes the reply) or None" in (
        outcome.error
    )
    [(_, body, headers)] = sent
    assert headers is not None and headers[LABKIT_CODE_HEADER] == "internal_error"
    assert ErrorReply.FromString(body).code == "internal_error"


def test_a_handler_without_parameters_is_called_and_answers() -> None:
    async def ping() -> EchoResponse:
        return EchoResponse(message="pong")

    outcome, sent, _ = serve(route_of("*.contract", ping), b"anything")
    assert outcome.ok
    assert [(to, EchoResponse.FromString(body).message) for to, body, _ in sent] == [
        ("_INBOX.alice.1", "pong")
    ]


# --- error_from ---------------------------------------------------------------------------


def test_error_from_knows_an_error_by_either_header() -> None:
    body = ErrorReply(code="nope", message="m").SerializeToString()
    assert error_from({ERROR_HEADER: "m"}, body) == ErrorReply(code="nope", message="m")
    assert error_from({LABKIT_CODE_HEADER: "nope"}, body) == ErrorReply(code="nope", message="m")
    assert error_from({ERROR_CODE_HEADER: "500"}, body) is None
    assert error_from(None, body) is None and error_from({}, body) is None


def test_error_from_an_unreadable_body_falls_back_to_the_headers() -> None:
    junk = b"\xff\xff\xff"
    both = {LABKIT_CODE_HEADER: "too_large", ERROR_HEADER: "the image is too large"}
    assert error_from(both, junk) == ErrorReply(code="too_large", message="the image is too large")
    assert error_from({ERROR_HEADER: "broken"}, junk) == ErrorReply(code="error", message="broken")
    assert error_from({LABKIT_CODE_HEADER: "x"}, junk) == ErrorReply(code="x", message="")


# --- injection ------------------------------------------------------------------------------


class Raw:
    """A dependency built from the delivery itself: the raw bytes and headers."""

    def __init__(self, data: bytes, headers: Headers | None) -> None:
        self.data, self.headers = data, headers


class Clock:
    """A dependency that comes from the server's resources."""


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registrations in these tests do not outlive them.
    monkeypatch.setattr(injection_module, "_providers", dict(injection_module._providers))


@pytest.mark.usefixtures("providers")
def test_a_registered_provider_sees_the_raw_delivery() -> None:
    register_dependency(Raw, lambda delivery: Raw(delivery.data, delivery.headers))
    seen: list[Raw] = []

    async def handler(request: EchoRequest, raw: Raw) -> EchoResponse:
        seen.append(raw)
        return EchoResponse(message=request.message)

    outcome, _, _ = serve(route_of("*.contract", handler), ECHO, headers={"k": "v"})
    assert outcome.ok
    assert [(r.data, r.headers) for r in seen] == [(ECHO, {"k": "v"})]


@pytest.mark.usefixtures("providers")
def test_a_dependency_without_provider_comes_from_the_resources() -> None:
    register_dependency(Clock)
    clock = Clock()
    seen: list[Clock] = []

    async def handler(now: Clock) -> None:
        seen.append(now)

    route = route_of("*.contract", handler)
    assert serve(route, resources={Clock: clock})[0].ok and seen == [clock]
    outcome, sent, _ = serve(route)
    assert outcome.error is not None
    assert "this server has no Clock; pass one in Server(resources=...)" in outcome.error
    assert ErrorReply.FromString(sent[0][1]).code == "internal_error"


def test_reply_sends_with_headers_and_remembers_it_did() -> None:
    replies: list[Reply] = []

    async def handler(request: EchoRequest, reply: Reply) -> None:
        replies.append(reply)
        assert reply.sent is False
        await reply(EchoResponse(message="early"), headers={"Stage": "early"})

    outcome, sent, _ = serve(route_of("*.contract", handler), ECHO)
    assert outcome.ok and replies[0].sent is True
    assert [(to, headers) for to, _, headers in sent] == [("_INBOX.alice.1", {"Stage": "early"})]


def test_a_declaration_mistake_names_the_handler_and_what_to_do() -> None:
    async def starred(*parts: Any) -> None: ...

    async def double_starred(**parts: Any) -> None: ...

    async def unknown(thing: Delivery) -> None: ...

    async def bare(thing) -> None:  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(InvalidHandler) as args:
        route_of("*.contract", starred)
    message = str(args.value)
    assert "starred" in message and "*parts" in message and "**parts" not in message
    assert "each dependency as its own annotated parameter" in message
    with pytest.raises(InvalidHandler, match=r"\*\*parts"):
        route_of("*.contract", double_starred)
    with pytest.raises(InvalidHandler) as cannot:
        route_of("*.contract", unknown)
    assert "unknown" in str(cannot.value)
    assert "which labkit cannot inject; use one of: a protobuf message, " in str(cannot.value)
    with pytest.raises(InvalidHandler, match="annotate it with one of: a protobuf message, "):
        route_of("*.contract", bare)


def test_an_unresolvable_type_hint_names_the_handler() -> None:
    async def dangling(thing: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    with pytest.raises(InvalidHandler, match=r"handler .*dangling: cannot resolve a type hint"):
        route_of("*.contract", dangling)
