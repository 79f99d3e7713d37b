"""Dispatch, pure: who may be answered, and a failed delivery is not a handler failure."""

from __future__ import annotations

import asyncio

import pytest

from labkit.error_replies import LABKIT_CODE_HEADER
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router
from labkit.server.dispatch import Outcome, dispatch
from labkit.server.errors import ReplyNotSent, ReplyTooLarge
from labkit.server.injection import Headers

Sent = list[tuple[str, bytes, Headers | None]]


def echo_router() -> Router:
    router = Router("echo")

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"echo {request.message}")

    @router.stream("*.echo.stream", stream="S", durable="d")
    async def stored(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"stored {request.message}")

    return router


def run(
    subject: str, reply: str | None, failures: list[Exception] | None = None
) -> tuple[Outcome, Sent]:
    core, persisted = echo_router().routes
    route = persisted if subject.endswith(".stream") else core
    sent: Sent = []
    pending = list(failures or [])

    async def send(to: str, data: bytes, headers: Headers | None) -> None:
        if pending:
            raise pending.pop(0)
        sent.append((to, data, headers))

    data = EchoRequest(message="hi").SerializeToString()
    outcome = asyncio.run(dispatch(route, subject, data, reply, None, send, {}))
    return outcome, sent


@pytest.mark.parametrize(
    "reply", ["bob.echo.stream.reply", "_INBOX.bob.1", "carol.ping", "_INBOX.alice", "x"]
)
def test_a_reply_outside_the_senders_inbox_is_refused_before_the_handler(reply: str) -> None:
    outcome, sent = run("alice.echo", reply)
    assert outcome.refused and not outcome.ok and sent == []


def test_a_persisted_reply_goes_only_to_its_own_reply_subject() -> None:
    outcome, sent = run("alice.echo.stream", "alice.echo.stream.reply")
    assert outcome.ok and [to for to, _, _ in sent] == ["alice.echo.stream.reply"]
    refused, nothing = run("alice.echo.stream", "bob.echo.stream.reply")
    assert refused.refused and nothing == []


def test_a_reply_not_sent_is_retried_without_an_error_reply() -> None:
    outcome, sent = run("alice.echo", "_INBOX.alice.1", [ReplyNotSent("election")])
    assert outcome.retry and not outcome.ok and sent == []


def test_a_reply_too_large_becomes_one_too_large_error_reply() -> None:
    outcome, sent = run("alice.echo", "_INBOX.alice.1", [ReplyTooLarge("too big")])
    assert not outcome.retry and len(sent) == 1
    headers = sent[0][2]
    assert headers is not None and headers[LABKIT_CODE_HEADER] == "too_large"
