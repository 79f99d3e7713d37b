"""Run one message through its handler: parse, inject, call, reply, or answer an error.

The real server and the in-memory test bus both call `dispatch`, so what a unit
test proves is what the server does.

Two rules shape it. The server answers only where the requester may read: a core
request's reply subject must lie in `_INBOX.<user>.>` (user: the subject's first
token), a persisted request's reply is `<subject>.reply`; anything else is refused
before the handler runs. And a reply the bus did not take (`ReplyNotSent`) is not
the handler's failure: no error reply is sent in its place, the outcome says
`retry`, and a persisted request is delivered again.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError, Message

from labkit.error_replies import (
    BUSY,
    ERROR_CODE_HEADER,
    ERROR_HEADER,
    INTERNAL_ERROR,
    INVALID_PAYLOAD,
    LABKIT_CODE_HEADER,
    TOO_LARGE,
    error_from,
    error_reply,
)
from labkit.server.busy import busy_text
from labkit.server.errors import HandlerError, ReplyNotSent, ReplyTooLarge
from labkit.server.injection import Delivery, Send
from labkit.server.router import Route
from labkit.subjects import is_private_reply, persisted_reply

log = logging.getLogger("labkit.server")

__all__ = [
    "ERROR_CODE_HEADER",
    "ERROR_HEADER",
    "LABKIT_CODE_HEADER",
    "Outcome",
    "answer_busy",
    "answer_error",
    "dispatch",
    "error_from",
    "reply_allowed",
]


class Outcome(NamedTuple):
    """What happened to one message (for stats and tests); a tuple: this is the hot path.

    `retry`: the reply (or error reply) could not be delivered; serve it again later.
    `refused`: its reply subject was not the requester's own; nothing was done.
    """

    route: str
    ok: bool
    seconds: float
    error: str | None = None
    retry: bool = False
    refused: bool = False


def reply_allowed(route: Route, subject: str, reply: str) -> bool:
    """May the server answer a request on `subject` at `reply`?"""
    if route.consumer is not None:
        return reply == persisted_reply(subject)
    return is_private_reply(subject, reply)


async def dispatch(
    route: Route,
    subject: str,
    data: bytes,
    reply: str | None,
    headers: dict[str, str] | None,
    send: Send,
    resources: dict[type, Any],
) -> Outcome:
    """Serve one message; never raises (a failure becomes an error reply and a log line)."""
    started = time.perf_counter()
    if reply is not None and not reply_allowed(route, subject, reply):
        log.warning(
            "%s: refused a request on %s: its reply subject %r is not the sender's own "
            "inbox; nothing was done or sent",
            route.name,
            subject,
            reply,
        )
        text = f"refused: reply subject {reply!r} is not the sender's inbox"
        return Outcome(route.name, False, time.perf_counter() - started, text, refused=True)
    plan = route.plan
    try:
        message = None
        if plan.message_type is not None:
            message = _parse(plan.message_type, data)
        if plan.providers:
            delivery = Delivery(subject, data, reply, headers, send, resources)
            arguments = plan.arguments(delivery, message)
        else:  # a handler that takes only its message: skip building the injection context
            arguments = {plan.message_param: message} if plan.message_param else {}
        result = await plan.handler(**arguments)
        if result is not None and reply:
            if not isinstance(result, Message):
                raise TypeError(
                    f"handler {route.name} returned {type(result).__name__}; return a protobuf "
                    "message (it becomes the reply) or None"
                )
            await send(reply, result.SerializeToString(), None)
    except ReplyNotSent as exc:
        log.warning("%s on %s: the reply was not delivered (%s)", route.name, subject, exc)
        return Outcome(route.name, False, time.perf_counter() - started, str(exc), retry=True)
    except ReplyTooLarge as exc:
        log.info("%s on %s: %s", route.name, subject, exc)
        code, text, status = TOO_LARGE, str(exc), 413
    except HandlerError as exc:
        log.info("%s on %s: %s (%s)", route.name, subject, exc.message, exc.code)
        code, text, status = exc.code, exc.message, exc.status
    except Exception as exc:
        log.exception("handler %s failed on %s", route.name, subject)
        code, text, status = INTERNAL_ERROR, f"the handler failed: {type(exc).__name__}: {exc}", 500
    else:
        return Outcome(route.name, True, time.perf_counter() - started)
    sent = await answer_error(send, reply, subject, code, text, status)
    return Outcome(route.name, False, time.perf_counter() - started, text, retry=not sent)


def _parse(message_type: type[Message], data: bytes) -> Message:
    try:
        return message_type.FromString(data)
    except (DecodeError, ValueError) as exc:
        raise HandlerError(
            f"the payload is not a valid {message_type.__name__} ({exc}); "
            f"send {message_type.__name__}(...).SerializeToString()",
            code=INVALID_PAYLOAD,
        ) from exc


async def answer_busy(
    route: Route, subject: str, reply: str | None, send: Send, retry_after: float
) -> Outcome:
    """Turn a request away unserved: its sender's queue on this server is full.

    The `busy` reply goes where any reply may go (the sender's own inbox) or nowhere.
    """
    started = time.perf_counter()
    text = busy_text(retry_after)
    if reply is not None and not reply_allowed(route, subject, reply):
        return Outcome(route.name, False, time.perf_counter() - started, text, refused=True)
    sent = await answer_error(send, reply, subject, BUSY, text, 429, retry_after)
    return Outcome(route.name, False, time.perf_counter() - started, text, retry=not sent)


async def answer_error(
    send: Send,
    reply: str | None,
    subject: str,
    code: str,
    message: str,
    status: int,
    retry_after: float | None = None,
) -> bool:
    """Send an error reply; False when it could not be delivered (try again later)."""
    if not reply:
        return True
    body, headers = error_reply(code, message, subject, status, retry_after)
    try:
        await send(reply, body, headers)
    except Exception as exc:  # the requester may be gone, or the stream unavailable
        log.warning("could not send the error reply for %s to %s: %s", subject, reply, exc)
        return False
    return True
