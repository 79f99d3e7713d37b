"""Dispatch, pure: what each Outcome reports, and what the log line names.

A refused request, a reply the bus did not take, a reply too large and an error reply
that could not be delivered each give an Outcome a caller (stats, the stream consumer)
acts on: the route, not ok, the time taken, why, and whether to serve it again.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from labkit.error_replies import ERROR_CODE_HEADER, ERROR_HEADER, LABKIT_CODE_HEADER
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router
from labkit.server.dispatch import Outcome, answer_error, dispatch
from labkit.server.errors import HandlerError, ReplyNotSent, ReplyTooLarge
from labkit.server.injection import Headers, Send

Sent = list[tuple[str, bytes, Headers | None]]


def run(
    reply: str | None, *, failures: list[Exception] | None = None, fails: Exception | None = None
) -> tuple[Outcome, Sent, float]:
    """Dispatch one echo request on alice.echo; also the wall time around the call."""
    router = Router("echo")

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        if fails is not None:
            raise fails
        return EchoResponse(message=f"echo {request.message}")

    (route,) = router.routes
    sent: Sent = []
    pending = list(failures or [])

    async def send(to: str, data: bytes, headers: Headers | None) -> None:
        if pending:
            raise pending.pop(0)
        sent.append((to, data, headers))

    data = EchoRequest(message="hi").SerializeToString()
    before = time.perf_counter()
    outcome = asyncio.run(dispatch(route, "alice.echo", data, reply, None, send, {}))
    return outcome, sent, time.perf_counter() - before


def assert_failed_in_time(outcome: Outcome, elapsed: float) -> None:
    assert outcome.route == "echo"
    assert outcome.ok is False
    assert isinstance(outcome.seconds, float) and 0 <= outcome.seconds <= elapsed


def test_a_refused_request_reports_its_route_the_time_and_the_reply_subject(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="labkit.server"):
        outcome, sent, elapsed = run("_INBOX.bob.1")
    assert_failed_in_time(outcome, elapsed)
    assert outcome.refused is True and outcome.retry is False and sent == []
    assert outcome.error is not None and "'_INBOX.bob.1'" in outcome.error
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("echo:")  # the route first, then what was refused
    assert "alice.echo" in line and "'_INBOX.bob.1'" in line


def test_a_reply_not_sent_reports_why_and_asks_for_a_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="labkit.server"):
        outcome, sent, elapsed = run("_INBOX.alice.1", failures=[ReplyNotSent("leader election")])
    assert_failed_in_time(outcome, elapsed)
    assert outcome.retry is True and outcome.refused is False and sent == []
    assert outcome.error == "leader election"
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("echo on alice.echo:") and "leader election" in line


def test_a_reply_too_large_is_answered_with_status_413_and_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="labkit.server"):
        outcome, sent, elapsed = run("_INBOX.alice.1", failures=[ReplyTooLarge("2 MB > 1 MB")])
    assert_failed_in_time(outcome, elapsed)
    assert outcome.error == "2 MB > 1 MB" and outcome.retry is False
    ((to, _, headers),) = sent
    assert to == "_INBOX.alice.1" and headers is not None
    assert headers[ERROR_CODE_HEADER] == "413" and headers[LABKIT_CODE_HEADER] == "too_large"
    assert headers[ERROR_HEADER] == "2 MB > 1 MB"
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "echo on alice.echo: 2 MB > 1 MB"


def test_an_error_reply_that_cannot_be_delivered_asks_for_a_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failure = HandlerError("no such note", code="not_found", status=404)
    with caplog.at_level(logging.WARNING, logger="labkit.server"):
        outcome, sent, elapsed = run(
            "_INBOX.alice.1", fails=failure, failures=[ConnectionError("gone")]
        )
    assert_failed_in_time(outcome, elapsed)
    assert outcome.retry is True and outcome.error == "no such note" and sent == []
    (line,) = [r.getMessage() for r in caplog.records]
    assert "alice.echo" in line and "_INBOX.alice.1" in line and "gone" in line


def test_a_delivered_error_reply_needs_no_retry() -> None:
    failure = HandlerError("no such note", code="not_found", status=404)
    outcome, sent, elapsed = run("_INBOX.alice.1", fails=failure)
    assert_failed_in_time(outcome, elapsed)
    assert outcome.retry is False and len(sent) == 1


def test_a_failure_without_a_reply_subject_has_nothing_to_retry() -> None:
    outcome, sent, elapsed = run(None, fails=HandlerError("bad", code="bad_request"))
    assert_failed_in_time(outcome, elapsed)
    assert outcome.retry is False and sent == []


def test_answer_error_says_whether_the_reply_was_delivered() -> None:
    async def broken(to: str, data: bytes, headers: Headers | None) -> None:
        raise ConnectionError("gone")

    async def fine(to: str, data: bytes, headers: Headers | None) -> None:
        return None

    def answer(send: Send, reply: str | None) -> bool:
        return asyncio.run(answer_error(send, reply, "alice.echo", "bad", "why", 400))

    assert answer(broken, "_INBOX.alice.1") is False
    assert answer(fine, "_INBOX.alice.1") is True
    assert answer(broken, None) is True  # nothing to deliver: nothing to retry
