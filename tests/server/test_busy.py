"""The `busy` answer encoded once is byte for byte the one dispatch.answer_busy sends."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client

from labkit.error_replies import BUSY, error_from, error_reply, retry_after_of
from labkit.server.busy import BusyAnswer, busy_text


def test_the_encoded_busy_answer_is_the_one_error_reply_builds() -> None:
    answer = BusyAnswer(1.5)
    subject = "alice.echo"
    body, headers = error_reply(BUSY, busy_text(1.5), subject, 429, 1.5)
    assert answer.body(subject) == body
    # The header block as a client reads it (nats-py's own header parser).
    parsed = asyncio.run(Client()._process_headers(answer.header_block))
    assert parsed == headers
    error = error_from(parsed, answer.body(subject))
    assert error is not None
    assert (error.code, error.subject) == (BUSY, subject)
    assert "send it again in 1500 ms" in error.message
    assert retry_after_of(parsed) == 1.5
