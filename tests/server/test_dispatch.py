"""Dispatch through the in-memory bus: every failure becomes an error reply, never a crash."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from labkit.protocol import EchoRequest, EchoResponse, ErrorReply
from labkit.server import HandlerError, MemoryBus, RemoteError, Router
from labkit.server.dispatch import ERROR_CODE_HEADER, ERROR_HEADER, LABKIT_CODE_HEADER, error_from
from labkit.server.memory import Received


def faulty_router() -> Router:
    router = Router("faulty")

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"echo {request.message}")

    @router.subscribe("*.boom")
    async def boom(request: EchoRequest) -> EchoResponse:
        raise RuntimeError(f"kaboom {request.message}")

    @router.subscribe("*.refuse")
    async def refuse(request: EchoRequest) -> EchoResponse:
        raise HandlerError(f"no {request.message} here", code="not_found", status=404)

    @router.subscribe("*.text")
    async def text(request: EchoRequest) -> Any:
        return "plain text is not a message"

    return router


async def failing_request(
    bus: MemoryBus, subject: str, data: bytes
) -> tuple[RemoteError, Received]:
    """The RemoteError the caller sees, and the raw error reply on the wire."""
    replies = bus.subscribe("_INBOX.>")
    with pytest.raises(RemoteError) as raised:
        await bus.request(subject, data, EchoResponse)
    return raised.value, replies.get_nowait()


def run_failing(subject: str, data: bytes) -> tuple[RemoteError, Received, MemoryBus, str]:
    async def scenario() -> tuple[RemoteError, Received, MemoryBus, str]:
        bus = MemoryBus(faulty_router())
        error, raw = await failing_request(bus, subject, data)
        # The bus keeps serving after the failure.
        after = await bus.request("alice.echo", EchoRequest(message="still here"), EchoResponse)
        return error, raw, bus, after.message

    return asyncio.run(scenario())


def test_a_payload_that_does_not_parse_is_invalid_payload() -> None:
    error, raw, bus, after = run_failing("alice.echo", b"\xff\xff\xff")
    assert error.code == "invalid_payload"
    assert "EchoRequest" in error.message
    assert error.subject == "alice.echo"
    assert raw.headers is not None
    assert raw.headers[ERROR_CODE_HEADER] == "400"
    assert raw.headers[LABKIT_CODE_HEADER] == "invalid_payload"
    assert raw.headers[ERROR_HEADER] == error.message
    assert ErrorReply.FromString(raw.data) == ErrorReply(
        code="invalid_payload", message=error.message, subject="alice.echo"
    )
    assert after == "echo still here"
    assert [o.ok for o in bus.outcomes] == [False, True]


def test_a_handler_that_raises_is_internal_error() -> None:
    error, raw, bus, after = run_failing("alice.boom", EchoRequest(message="x").SerializeToString())
    assert error.code == "internal_error"
    assert "RuntimeError: kaboom x" in error.message
    assert raw.headers is not None
    assert raw.headers[ERROR_CODE_HEADER] == "500"
    assert raw.headers[LABKIT_CODE_HEADER] == "internal_error"
    assert after == "echo still here"
    assert bus.outcomes[0].route == "boom"
    assert not bus.outcomes[0].ok


def test_a_handler_error_keeps_its_code_and_status() -> None:
    error, raw, _, after = run_failing(
        "bob.refuse", EchoRequest(message="cake").SerializeToString()
    )
    assert (error.code, error.message, error.subject) == ("not_found", "no cake here", "bob.refuse")
    assert raw.headers is not None
    assert raw.headers[ERROR_CODE_HEADER] == "404"
    assert raw.headers[ERROR_HEADER] == "no cake here"
    assert after == "echo still here"


def test_returning_something_that_is_not_a_message_is_a_clear_error() -> None:
    error, raw, _, after = run_failing("alice.text", EchoRequest().SerializeToString())
    assert error.code == "internal_error"
    assert "handler text returned str" in error.message
    assert "protobuf message" in error.message
    assert raw.headers is not None
    assert raw.headers[ERROR_CODE_HEADER] == "500"
    assert after == "echo still here"


def test_a_failure_without_reply_subject_sends_nothing_but_is_recorded() -> None:
    async def scenario() -> tuple[MemoryBus, list[Received]]:
        bus = MemoryBus(faulty_router())
        everything = bus.subscribe(">")
        await bus.publish("alice.boom", EchoRequest(message="quiet").SerializeToString())
        await bus.publish("alice.echo", b"\xff")
        seen = []
        while not everything.empty():
            seen.append(everything.get_nowait())
        return bus, seen

    bus, seen = asyncio.run(scenario())
    assert [m.subject for m in seen] == ["alice.boom", "alice.echo"]  # only what was published
    assert [(o.route, o.ok) for o in bus.outcomes] == [("boom", False), ("echo", False)]
    assert "kaboom quiet" in (bus.outcomes[0].error or "")
    assert "EchoRequest" in (bus.outcomes[1].error or "")


def test_error_from_reads_only_error_replies() -> None:
    assert error_from(None, EchoResponse(message="ok").SerializeToString()) is None
    assert error_from({"Other": "x"}, b"") is None
    fallback = error_from({ERROR_HEADER: "broken", LABKIT_CODE_HEADER: "odd"}, b"\xff")
    assert fallback == ErrorReply(code="odd", message="broken")
