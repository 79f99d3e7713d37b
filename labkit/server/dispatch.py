"""Run one message through its handler: parse, inject, call, reply, or answer an error.

The real server and the in-memory test bus both call `dispatch`, so what a unit
test proves is what the server does.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError, Message

from labkit.protocol import ErrorReply
from labkit.server.errors import HandlerError
from labkit.server.injection import Delivery, Headers, Send
from labkit.server.router import Route

log = logging.getLogger("labkit.server")

# Headers in the style of the NATS services API, so standard tooling sees errors.
ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"
LABKIT_CODE_HEADER = "Labkit-Error"


class Outcome(NamedTuple):
    """What happened to one message (for stats and tests); a tuple: this is the hot path."""

    route: str
    ok: bool
    seconds: float
    error: str | None = None


async def dispatch(
    route: Route,
    subject: str,
    data: bytes,
    reply: str | None,
    headers: Headers | None,
    send: Send,
    resources: dict[type, Any],
) -> Outcome:
    """Serve one message; never raises (a failure becomes an error reply and a log line)."""
    started = time.perf_counter()
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
    except HandlerError as exc:
        log.info("%s on %s: %s (%s)", route.name, subject, exc.message, exc.code)
        await _answer_error(send, reply, subject, exc.code, exc.message, exc.status)
        return Outcome(route.name, False, time.perf_counter() - started, exc.message)
    except Exception as exc:
        log.exception("handler %s failed on %s", route.name, subject)
        text = f"the handler failed: {type(exc).__name__}: {exc}"
        await _answer_error(send, reply, subject, "internal_error", text, 500)
        return Outcome(route.name, False, time.perf_counter() - started, text)
    return Outcome(route.name, True, time.perf_counter() - started)


def _parse(message_type: type[Message], data: bytes) -> Message:
    try:
        return message_type.FromString(data)
    except (DecodeError, ValueError) as exc:
        raise HandlerError(
            f"the payload is not a valid {message_type.__name__} ({exc}); "
            f"send {message_type.__name__}(...).SerializeToString()",
            code="invalid_payload",
        ) from exc


async def _answer_error(
    send: Send, reply: str | None, subject: str, code: str, message: str, status: int
) -> None:
    if not reply:
        return
    body = ErrorReply(code=code, message=message, subject=subject).SerializeToString()
    headers = {ERROR_HEADER: message, ERROR_CODE_HEADER: str(status), LABKIT_CODE_HEADER: code}
    try:
        await send(reply, body, headers)
    except Exception:  # the requester may be gone; the log line above is what is left
        log.warning("could not send the error reply for %s to %s", subject, reply)


def error_from(headers: Headers | None, data: bytes) -> ErrorReply | None:
    """The ErrorReply inside an answer, or None when the answer is not an error."""
    if not headers or (LABKIT_CODE_HEADER not in headers and ERROR_HEADER not in headers):
        return None
    try:
        return ErrorReply.FromString(data)
    except DecodeError:
        return ErrorReply(
            code=headers.get(LABKIT_CODE_HEADER, "error"), message=headers.get(ERROR_HEADER, "")
        )
